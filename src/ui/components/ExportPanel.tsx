import { useRef, useState } from 'react';
import { exportStudent, loadConfigFile, saveConfigFile } from '../controller';
import { formatBytes } from '../format';
import { isBusyTraining, useLabStore } from '../store';

/** The distilled student as a tfjs graph model in a .zip, and the experiment config as JSON. */
export function ExportPanel() {
  const [precision, setPrecision] = useState<'float32' | 'float16'>('float16');
  const exporting = useLabStore((s) => s.exporting);
  const busy = useLabStore((s) => isBusyTraining(s.training.status));
  const ready = useLabStore((s) => s.models.student.status === 'ready');
  const notice = useLabStore((s) => s.configNotice);
  const configInput = useRef<HTMLInputElement>(null);
  return (
    <section className="card" aria-labelledby="export-title" data-testid="export-panel">
      <h2 id="export-title">Export</h2>
      <div className="row">
        <label className="inline">
          <input type="radio" name="precision" checked={precision === 'float16'} onChange={() => setPrecision('float16')} /> float16 weights
        </label>
        <label className="inline">
          <input type="radio" name="precision" data-testid="precision-float32" checked={precision === 'float32'} onChange={() => setPrecision('float32')} /> float32
        </label>
        <button type="button" data-testid="export" disabled={!ready || busy || exporting.status === 'loading'} onClick={() => void exportStudent(precision)}>
          Download student (.zip)
        </button>
      </div>
      <p className="muted small">model.json + model.bin (tf.loadGraphModel reads them) + model.manifest.json. Drop the .zip on the student card to load it again.</p>
      {exporting.status === 'loading' && <p className="muted">{exporting.detail}…</p>}
      {exporting.status === 'error' && (
        <p className="error" role="alert">
          {exporting.error}
        </p>
      )}
      {exporting.status === 'ready' && (
        <p className="small" data-testid="export-result">
          Saved {exporting.value.fileName} ({formatBytes(exporting.value.bytes)}): {exporting.value.name}
        </p>
      )}
      <h3>Experiment config</h3>
      <div className="row">
        <button type="button" className="secondary" data-testid="save-config" onClick={saveConfigFile}>
          Save JSON
        </button>
        <button type="button" className="secondary" disabled={busy} onClick={() => configInput.current?.click()}>
          Load JSON…
        </button>
        <input
          ref={configInput}
          type="file"
          hidden
          accept=".json,application/json"
          data-testid="config-file"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void loadConfigFile(f);
            e.target.value = '';
          }}
        />
      </div>
      {notice && (
        <p className="small" data-testid="config-notice">
          {notice}
        </p>
      )}
    </section>
  );
}
