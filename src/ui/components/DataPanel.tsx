import { useRef, useState, type DragEvent, type RefObject } from 'react';
import type { SplitInfo } from '../../worker/lab';
import { clearPhotos, loadDataArchive, loadDataFolder, loadPhotosArchive, loadPhotosFolder, setSplits, updateConfig } from '../controller';
import { isRunActive, useLabStore } from '../store';
import { withAnnotatedPerBatchInBatch } from '../../train/epoch';
import { NumberField } from './NumberField';

function SplitSummary({ role, info }: { role: string; info: SplitInfo }) {
  const s = info.summary;
  const classes = Object.entries(s.objectsPerClass).sort((a, b) => b[1] - a[1]);
  const reasons = s.skipped.length;
  return (
    <div className="split-summary" data-testid={`split-${role}`}>
      <p>
        <strong>{role === 'train' ? 'Training' : 'Evaluation'}</strong> split <span className="mono">{info.split}</span>: <span data-testid={`split-${role}-images`}>{s.imageCount}</span> images,{' '}
        {s.objectCount} objects ({s.difficultCount} difficult)
        {reasons > 0 && <span className="warn-text">, {reasons} skipped</span>}
      </p>
      <p className="class-counts small">
        {classes.map(([c, n]) => (
          <span key={c} className="chip">
            {c} <b>{n}</b>
          </span>
        ))}
      </p>
      {reasons > 0 && (
        <details className="small">
          <summary>{reasons} skipped, with reasons</summary>
          <ul className="problems">
            {s.skipped.map((p, i) => (
              <li key={i}>
                <span className="mono">{p.file}</span>: {p.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
      {Object.keys(s.unknownClassObjects).length > 0 && (
        <p className="small muted">
          Not in the student's classes: {Object.entries(s.unknownClassObjects).map(([c, n]) => `${c} (${n})`).join(', ')}
        </p>
      )}
    </div>
  );
}

/** The two hidden pickers behind a panel's buttons: a folder (webkitdirectory) and one archive. */
function HiddenPickers({ prefix, folder, archive, onFolder, onArchive }: { prefix: string; folder: RefObject<HTMLInputElement | null>; archive: RefObject<HTMLInputElement | null>; onFolder: (files: File[]) => void; onArchive: (file: File) => void }) {
  return (
    <>
      <input
        ref={folder}
        type="file"
        hidden
        data-testid={`${prefix}-folder`}
        // React does not know the attribute; the DOM does.
        {...{ webkitdirectory: '', directory: '' }}
        multiple
        onChange={(e) => {
          onFolder(Array.from(e.target.files ?? []));
          e.target.value = '';
        }}
      />
      <input
        ref={archive}
        type="file"
        hidden
        accept=".zip,.tar,.gz,.tgz"
        data-testid={`${prefix}-archive`}
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) onArchive(f);
          e.target.value = '';
        }}
      />
    </>
  );
}

/** Photos without annotations: trained on beside the split with the teacher's detections as boxes, and used to derive a student. */
function PhotosPicker({ locked }: { locked: boolean }) {
  const photos = useLabStore((s) => s.photos);
  const notice = useLabStore((s) => s.photosNotice);
  const threshold = useLabStore((s) => s.config?.data.pseudoThreshold ?? 0.4);
  const photosOnly = useLabStore((s) => !!s.config?.lab?.photosOnly);
  const methods = useLabStore((s) => s.config?.methods.length ?? 0);
  const batchSize = useLabStore((s) => s.config?.schedule.batchSize ?? 4);
  const annotatedPerBatch = useLabStore((s) => s.config?.data.annotatedPerBatch ?? 0);
  const folder = useRef<HTMLInputElement>(null);
  const archive = useRef<HTMLInputElement>(null);
  return (
    <div className="photos" data-testid="photos">
      <p className="small">
        <strong>Photos without annotations</strong> <span className="muted">(optional)</span>
      </p>
      <div className="row">
        <button type="button" className="secondary" disabled={locked} onClick={() => folder.current?.click()}>
          Photo folder…
        </button>
        <button type="button" className="secondary" disabled={locked} onClick={() => archive.current?.click()}>
          Photo archive…
        </button>
        {photos.status === 'ready' && (
          <button type="button" className="link" disabled={locked} onClick={() => void clearPhotos()}>
            remove
          </button>
        )}
      </div>
      <HiddenPickers prefix="photos" folder={folder} archive={archive} onFolder={(f) => void loadPhotosFolder(f)} onArchive={(f) => void loadPhotosArchive(f)} />
      {photos.status === 'loading' && <p className="muted small">{photos.detail}…</p>}
      {photos.status === 'ready' && (
        <p className="small" data-testid="photos-info">
          {photos.value.count} photos from {photos.value.label}: the distillation methods train on them {photosOnly ? 'alone' : 'beside the split'}, with the teacher&apos;s detections (score ≥ {threshold}) as
          boxes where a method needs boxes (the detection loss keeps to annotated images); a derived student is calibrated on them.
          {methods === 0 && <span className="warn-text"> With no method chosen they teach nothing and are left out of training.</span>}
        </p>
      )}
      {photos.status === 'ready' && (
        <label className="small check">
          <input
            type="checkbox"
            data-testid="photos-only"
            checked={photosOnly}
            disabled={locked}
            onChange={(e) => {
              const on = e.target.checked;
              updateConfig((c) => ({ ...c, lab: { ...c.lab, photosOnly: on } }));
            }}
          />{' '}
          train on the photos alone (label-free: the annotated split is only evaluated)
        </label>
      )}
      {photos.status === 'ready' && !photosOnly && (
        <NumberField
          label="annotated images per batch"
          value={annotatedPerBatch}
          integer
          min={0}
          disabled={locked}
          testId="annotated-per-batch"
          title={`with photos beside the split: this many annotated images in every batch, the rest photos (an epoch is then one pass over the photos); 0: all drawn alike. Below the batch size (${batchSize}).`}
          onChange={(v) => updateConfig((c) => withAnnotatedPerBatchInBatch({ ...c, data: { ...c.data, annotatedPerBatch: v } }))}
        />
      )}
      {notice && (
        <p className="error small" role="alert" data-testid="photos-notice">
          {notice}
        </p>
      )}
    </div>
  );
}

/** The VOC subset: a picked folder or a dropped archive, the two splits, and what the loader read. */
export function DataPanel() {
  const data = useLabStore((s) => s.data);
  const notice = useLabStore((s) => s.dataNotice);
  const locked = useLabStore((s) => isRunActive(s.training.status) || s.models.student.status !== 'ready');
  const folder = useRef<HTMLInputElement>(null);
  const archive = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const f = e.dataTransfer.files[0];
    if (f && !locked) void loadDataArchive(f);
  };
  const ready = data.status === 'ready' ? data.value : null;
  return (
    <section
      className={`card${over ? ' over' : ''}`}
      id="data"
      aria-labelledby="data-title"
      data-testid="data-panel"
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <h2 id="data-title">2 · Data (PASCAL VOC)</h2>
      <div className="row">
        <button type="button" disabled={locked} onClick={() => folder.current?.click()}>
          Pick a VOC folder…
        </button>
        <button type="button" className="secondary" disabled={locked} onClick={() => archive.current?.click()}>
          Archive…
        </button>
        <span className="muted small">or drop a .zip / .tar</span>
      </div>
      <HiddenPickers prefix="data" folder={folder} archive={archive} onFolder={(f) => void loadDataFolder(f)} onArchive={(f) => void loadDataArchive(f)} />
      {data.status === 'loading' && <p className="muted">{data.detail}…</p>}
      {data.status === 'error' && <p className="error" role="alert">{data.error}</p>}
      {notice && data.status !== 'error' && (
        <p className="error small" role="alert" data-testid="data-notice">
          {notice}
        </p>
      )}
      {ready && (
        <>
          <p className="muted small" data-testid="data-label">
            {ready.label} · {ready.year}
          </p>
          <div className="split-pick">
            <label>
              train on
              <select data-testid="train-split" value={ready.train.split} disabled={locked} onChange={(e) => void setSplits(e.target.value, ready.val.split)}>
                {ready.availableSplits.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
            <label>
              evaluate on
              <select data-testid="val-split" value={ready.val.split} disabled={locked} onChange={(e) => void setSplits(ready.train.split, e.target.value)}>
                {ready.availableSplits.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
          </div>
          {ready.train.split === ready.val.split && <p className="warn-text small">Training and evaluating on the same split measures memorisation, not generalisation.</p>}
          <SplitSummary role="train" info={ready.train} />
          <SplitSummary role="val" info={ready.val} />
        </>
      )}
      {data.status === 'idle' && <p className="muted small">Pick the VOCdevkit folder, a VOC20xx folder, or drop an archive of one.</p>}
      <PhotosPicker locked={locked} />
    </section>
  );
}
