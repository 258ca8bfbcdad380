import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import { loseDeviceForTest } from './ui/controller';
import './ui/styles.css';

// `?testHooks` lets the end-to-end tests reach what a person cannot trigger at will (a lost GPU device).
if (new URLSearchParams(location.search).has('testHooks')) {
  (window as unknown as { __distillLab: object }).__distillLab = { loseDevice: loseDeviceForTest };
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
