import { useEffect, useRef, useState } from 'react';
import { lastAfter } from '../../provenance/run-record';
import { updateConfig } from '../controller';
import { mapCurve } from '../run-compare';
import { formatBytes } from '../format';
import { compareRuns, deleteRun, discardRunEntry, dropRunCheckpoint, downloadRunLog, exportRun, importRun, renameRun, resumeRun, togglePicked, useRunsStore, watchRuns } from '../runs';
import type { RunSummary } from '../runs-types';
import { isRunActive, useLabStore } from '../store';
import { OverlayChart } from './OverlayChart';
import { RunComparison } from './RunComparison';
import './runs.css';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : (100 * x).toFixed(1));

/** The current run's log for download, and the run history: rename, resume, export, import, delete, compare. */
export function RunsPanel() {
  useEffect(() => watchRuns(), []);
  const list = useRunsStore((s) => s.list);
  const notice = useRunsStore((s) => s.notice);
  const busy = useRunsStore((s) => s.busy);
  const picked = useRunsStore((s) => s.picked);
  const compared = useRunsStore((s) => s.compared);
  const active = useLabStore((s) => isRunActive(s.training.status));
  const hasLog = useLabStore((s) => s.training.history.length > 0);
  const input = useRef<HTMLInputElement>(null);
  const evalEvery = useLabStore((s) => s.config?.lab?.evalEvery ?? 0);
  const currentRun = list?.runs.find((r) => r.id === list.currentRunId);
  const mapPoints = currentRun ? mapCurve(currentRun) : [];
  const lastMap = mapPoints[mapPoints.length - 1];
  return (
    <section className="card runs-panel" aria-labelledby="runs-title" data-testid="runs-panel">
      <div className="panel-head">
        <h2 id="runs-title">Runs</h2>
        {list?.usage && (
          <span className="muted small" data-testid="runs-storage" title="navigator.storage.estimate()">
            storage used: {formatBytes(list.usage.usage)} of {formatBytes(list.usage.quota)}
          </span>
        )}
      </div>
      <h3>This run</h3>
      <div className="row">
        <span className="small">Log (every term at every step, as the command line's log.jsonl):</span>
        <button type="button" className="secondary" data-testid="log-jsonl" disabled={!hasLog || busy} onClick={() => void downloadRunLog('jsonl')}>
          .jsonl
        </button>
        <button type="button" className="secondary" data-testid="log-csv" disabled={!hasLog || busy} onClick={() => void downloadRunLog('csv')}>
          .csv
        </button>
      </div>
      <div className="row">
        <label className="inline small">
          Evaluate every{' '}
          <input
            type="number"
            min={0}
            step={1}
            style={{ width: '4.5em' }}
            data-testid="eval-every"
            disabled={active}
            value={evalEvery}
            onChange={(e) => {
              const n = Math.max(0, Math.floor(Number(e.target.value) || 0));
              updateConfig((c) => ({ ...c, lab: { ...c.lab, evalEvery: n } }));
            }}
          />{' '}
          steps while training (0: never; on the evaluation split, its first “max eval images”)
        </label>
      </div>
      {mapPoints.length > 0 && (
        <div className="row" data-testid="run-map-curve">
          <OverlayChart title="mAP during training (all-point, %)" percent series={[{ label: currentRun!.name, points: mapPoints }]} width={360} />
          <span className="small" data-testid="run-map-now">
            {lastMap ? `${pct(lastMap[1])} mAP at step ${lastMap[0]}` : ''}
          </span>
        </div>
      )}
      <h3>History</h3>
      {list && !list.persistent && <p className="error small">This browser offers no IndexedDB here: runs will not survive a reload.</p>}
      <div className="row">
        <button type="button" className="secondary" data-testid="run-import-button" disabled={busy} onClick={() => input.current?.click()}>
          Import a run…
        </button>
        <span className="muted small">a run's .zip or .json from this lab, or run.json from npm run distill</span>
        <input
          ref={input}
          type="file"
          hidden
          accept=".zip,.json,application/zip,application/json"
          data-testid="run-import"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void importRun(f);
            e.target.value = '';
          }}
        />
        {picked.length >= 2 && (
          <button type="button" data-testid="compare-runs" disabled={busy} onClick={() => void compareRuns()}>
            Compare {picked.length} runs
          </button>
        )}
      </div>
      {notice && (
        <p className="small" role="status" data-testid="runs-notice">
          {notice}
        </p>
      )}
      {list && list.problems.length > 0 && (
        <ul className="problems small" data-testid="runs-problems">
          {list.problems.map((p) => (
            <li key={p.key}>
              {p.message} The entry was skipped.{' '}
              <button type="button" className="link" onClick={() => void discardRunEntry(p.key)}>
                remove it
              </button>
            </li>
          ))}
        </ul>
      )}
      {list && list.runs.length === 0 && <p className="muted small">No runs yet: every run you train is kept here until you delete it.</p>}
      <ul className="run-list">
        {list?.runs.map((r) => (
          // Keyed by the name too: a rename from elsewhere resets the field.
          <RunItem key={`${r.id}:${r.name}`} run={r} current={r.id === list.currentRunId} locked={active || busy} picked={picked.includes(r.id)} />
        ))}
      </ul>
      {compared && <RunComparison runs={compared} />}
    </section>
  );
}

function RunItem({ run, current, locked, picked }: { run: RunSummary; current: boolean; locked: boolean; picked: boolean }) {
  const [name, setName] = useState(run.name);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const after = lastAfter(run);
  const commit = () => {
    if (name.trim() && name.trim() !== run.name) void renameRun(run.id, name);
    else setName(run.name);
  };
  const resumable = !!run.checkpoint && run.checkpoint.step < run.totalSteps;
  return (
    <li className={`run-item${current ? ' current' : ''}`} data-testid="run-item" data-run-id={run.id} data-run-name={run.name}>
      <div className="run-head">
        <input type="checkbox" aria-label="compare" data-testid="run-pick" checked={picked} onChange={(e) => togglePicked(run.id, e.target.checked)} />
        <input
          className="run-name"
          aria-label="run name"
          data-testid="run-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => {
            if (e.key === 'Enter') (e.target as HTMLInputElement).blur();
          }}
        />
        <span className={`status status-${run.status}`} data-testid="run-status">
          {run.status}
        </span>
      </div>
      <p className="run-meta muted" data-testid="run-meta">
        {run.methods.length ? run.methods.map((m) => m.id).join(' + ') : 'fine-tuning'} · step {run.steps}/{run.totalSteps || '?'} · {run.config.schedule.inputSize}² · {run.backend} · {run.origin === 'cli' ? 'command line' : 'lab'} · {run.createdAt.slice(0, 16).replace('T', ' ')}
        {after && ` · mAP ${pct(after.mapAll)} at step ${after.step}`}
        {run.checkpoint && ` · checkpoint at step ${run.checkpoint.step} (${formatBytes(run.checkpoint.bytes)})`}
        {current && ' · the student now'}
      </p>
      {run.error && <p className="error small">{run.error}</p>}
      <div className="run-actions">
        {resumable && (
          <button type="button" className="secondary" data-testid="run-resume" disabled={locked} onClick={() => void resumeRun(run.id)}>
            Resume
          </button>
        )}
        <button type="button" className="secondary" data-testid="run-export-zip" disabled={locked} onClick={() => void exportRun(run.id, 'zip')}>
          Export .zip
        </button>
        <button type="button" className="secondary" data-testid="run-export-json" disabled={locked} onClick={() => void exportRun(run.id, 'json')}>
          .json
        </button>
        {run.checkpoint && (
          <button
            type="button"
            className="link"
            data-testid="run-drop-checkpoint"
            disabled={locked && current}
            title="keeps the curves, evaluations and config; the run can no longer be resumed"
            onClick={() => void dropRunCheckpoint(run.id)}
          >
            Free its checkpoint ({formatBytes(run.checkpoint.bytes)})
          </button>
        )}
        {confirmDelete ? (
          <>
            <button type="button" className="danger" data-testid="run-delete-confirm" onClick={() => void deleteRun(run.id).then(() => setConfirmDelete(false))}>
              Delete "{run.name}" and its checkpoint
            </button>
            <button type="button" className="link" onClick={() => setConfirmDelete(false)}>
              keep it
            </button>
          </>
        ) : (
          <button type="button" className="link" data-testid="run-delete" disabled={locked && current} onClick={() => setConfirmDelete(true)}>
            Delete…
          </button>
        )}
      </div>
    </li>
  );
}
