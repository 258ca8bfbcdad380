/**
 * A small key–value store on IndexedDB (database "distill-lab", object store "kv"), for what
 * must outlive a reload or a lost GPU device: the latest checkpoint, the model files a person
 * dropped, a dropped dataset archive, and the run history (src/provenance/run-store.ts). Values are structured-cloned (typed arrays stay
 * typed arrays). Where IndexedDB is missing (Node, some private modes) a store in memory stands
 * in, so the lab works and says that nothing will survive a reload.
 */
export interface KeyValueStore {
  readonly persistent: boolean;
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key that starts with the prefix. */
  keys(prefix: string): Promise<string[]>;
}

const DB_NAME = 'distill-lab';
const STORE = 'kv';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

export function memoryStore(): KeyValueStore {
  const map = new Map<string, unknown>();
  return {
    persistent: false,
    get: <T>(key: string) => Promise.resolve(map.get(key) as T | undefined),
    put: (key, value) => {
      map.set(key, value);
      return Promise.resolve();
    },
    delete: (key) => {
      map.delete(key);
      return Promise.resolve();
    },
    keys: (prefix) => Promise.resolve([...map.keys()].filter((k) => k.startsWith(prefix))),
  };
}

export async function openStore(): Promise<KeyValueStore> {
  if (typeof indexedDB === 'undefined') return memoryStore();
  let db: IDBDatabase;
  try {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    db = await request(open);
  } catch {
    return memoryStore();
  }
  const tx = async <T>(mode: IDBTransactionMode, work: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const t = db.transaction(STORE, mode);
    const result = await request(work(t.objectStore(STORE)));
    await new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
      t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted (is the disk full?)'));
    });
    return result;
  };
  return {
    persistent: true,
    get: <T>(key: string) => tx('readonly', (s) => s.get(key) as IDBRequest<T | undefined>),
    put: async (key, value) => {
      await tx('readwrite', (s) => s.put(value, key));
    },
    delete: async (key) => {
      await tx('readwrite', (s) => s.delete(key));
    },
    keys: async (prefix) => {
      const keys = await tx('readonly', (s) => s.getAllKeys(IDBKeyRange.bound(prefix, `${prefix}\uffff`)));
      return keys.map(String);
    },
  };
}
