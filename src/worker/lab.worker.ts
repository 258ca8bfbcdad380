// The worker's entry point: wiring only, all logic lives in Lab.
import * as Comlink from 'comlink';
import './wasm-urls';
import { Lab } from './lab';

Comlink.expose(new Lab());
