/** The project's version (package.json), written into every model card and run record. */
import pkg from '../../package.json';

export const PROJECT_VERSION: string = pkg.version;
