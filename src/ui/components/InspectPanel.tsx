import type { DistributionPanelMap, GridPanelMap, PanelMap } from '../../distill/types';
import type { LabInspection as InspectionResult, MethodRow } from '../../worker/lab';
import { formatValue, STUDENT_COLOUR, TEACHER_COLOUR } from '../colors';
import { inspect, selectInspectImage, setInspectThreshold, setSharedScale } from '../controller';
import { formatMs } from '../format';
import { sharedExtent } from '../heatmap-draw';
import { TERM_LEGEND, termLabel } from '../term-names';
import { inspectionSource, staleReasons } from '../inspect-stale';
import { isBusyTraining, useLabStore } from '../store';
import { Distribution, ChannelBars } from './Distribution';
import { Heatmap } from './Heatmap';
import { InputFrame } from './InputFrame';

interface MapRow {
  name: string;
  title: string;
  domain?: [number, number];
  /** Rows with the same pair key (a teacher's map and the student's) share one colour range per level by default. */
  pair?: string;
}

const METHOD_MAPS: Record<string, { title: string; rows: MapRow[]; note: string }> = {
  fgfi: {
    title: 'FGFI: imitation mask per level',
    rows: [
      { name: 'mask', title: 'mask', domain: [0, 1] },
      { name: 'error', title: 'imitation error' },
    ],
    note: 'Cells where an anchor overlaps a ground-truth box enough to be imitated (1), and the squared feature error there.',
  },
  fgd: {
    title: 'FGD: focal masks and attention',
    rows: [
      { name: 'fg_mask', title: 'fg / scale mask' },
      { name: 'bg_mask', title: 'bg mask' },
      { name: 'spatial_attention_T', title: 'spatial attention T', pair: 'attention' },
      { name: 'spatial_attention_S', title: 'spatial attention S', pair: 'attention' },
    ],
    note: 'The foreground mask is 1/(box area in cells) inside boxes; attention is H·W·softmax of the mean |feature|, the teacher’s and the student’s on one colour scale per level (unless “one colour scale per teacher/student pair” is off).',
  },
  pfi: {
    title: 'PFI: prediction difference (P) and feature difference (F)',
    rows: [
      { name: 'P', title: 'P: prediction difference' },
      { name: 'F', title: 'F: feature difference' },
    ],
    note: 'P weights the feature imitation where teacher and student predict differently.',
  },
  'head-mimic': {
    title: 'Head mimicking: cosine of head features T vs S',
    rows: [{ name: 'cosine', title: 'cosine' }],
    note: 'Cosine similarity at every location (1: the same direction); the loss averages 1 − cosine over the positive anchors only.',
  },
  hints: {
    title: 'Hints: student vs teacher error at each stage, the neck and the head',
    rows: [
      { name: 'stage error', title: 'backbone stage' },
      { name: 'neck error', title: 'neck' },
      { name: 'head error', title: 'head features' },
    ],
    note: 'Squared error over channels relative to the teacher’s spread (0: the student reproduces the teacher there; 1: no better than the teacher’s mean).',
  },
  // Titled by the mode the maps were computed in (BCE by default, KL for softmax classifiers): see kdSpec.
  kd: { title: 'Soft-label KD', rows: [{ name: 'kd', title: 'loss' }], note: '' },
  ld: {
    title: 'LD: main region and valuable localisation region',
    rows: [
      { name: 'main', title: 'main region', domain: [0, 1] },
      { name: 'vlr', title: 'VLR', domain: [0, 1] },
    ],
    note: 'Edge distributions below are read at the chosen object’s best positive anchor.',
  },
};
const ORDER = ['fgfi', 'fgd', 'pfi', 'rm', 'ld', 'head-mimic', 'hints', 'kd'];

/** The KD maps' title and note for the mode they were made with. */
function kdSpec(r: InspectionResult, methods: readonly MethodRow[]): { title: string; rows: MapRow[]; note: string } {
  const chosen = r.methods.find((m) => m.id === 'kd')?.params as { mode?: string; temperature?: number } | undefined;
  const defaults = methods.find((m) => m.id === 'kd')?.defaults as { mode?: string } | undefined;
  const mode = chosen?.mode ?? defaults?.mode ?? 'bce';
  return mode === 'kl'
    ? {
        title: 'Soft-label KD (KL mode): per-location KL divergence',
        rows: [{ name: 'kd', title: 'KL(T‖S)' }],
        note: 'KL divergence between the teacher’s and the student’s softmax class scores (softened by the temperature) at every location.',
      }
    : {
        title: 'Soft-label KD (BCE mode): per-location binary cross-entropy',
        rows: [{ name: 'kd', title: 'BCE(T, S)' }],
        note: 'Binary cross-entropy of the student’s sigmoid class scores against the teacher’s (both softened by the temperature), summed over the classes, at every location.',
      };
}

function specOf(r: InspectionResult, method: string, methods: readonly MethodRow[]) {
  return method === 'kd' ? kdSpec(r, methods) : METHOD_MAPS[method];
}

function gridMaps(maps: PanelMap[], method: string, name: string): GridPanelMap[] {
  return maps.filter((m): m is GridPanelMap => m.kind !== 'distribution' && m.name === `${method}/${name}`).sort((a, b) => (a.level ?? 0) - (b.level ?? 0));
}

/** A map's colour range: fixed by its row, shared with its pair at the same level (the default), or its own. */
function domainOf(r: InspectionResult, method: string, rows: readonly MapRow[], row: MapRow, level: number, shared: boolean): { domain?: [number, number]; note?: string } {
  if (row.domain) return { domain: row.domain };
  if (!shared || !row.pair) return {};
  const partners = rows.filter((x) => x.pair === row.pair);
  const maps = partners.map((x) => gridMaps(r.maps, method, x.name).find((m) => (m.level ?? 0) === level)).filter((m): m is GridPanelMap => !!m);
  if (maps.length < 2) return {};
  return { domain: sharedExtent(maps.map((m) => m.data)), note: `same scale as ${partners.filter((x) => x !== row).map((x) => x.title).join(' and ')}` };
}

const linkOf = (method: string, m: GridPanelMap) => `${method}:${m.level ?? 0}:${m.shape[1]}x${m.shape[2]}`;

function HeatmapRows({ r, method, imageUrl, spec }: { r: InspectionResult; method: string; imageUrl: string; spec: { rows: MapRow[] } }) {
  const overlay = { imageUrl, letterbox: r.letterbox, inputSize: r.inputSize };
  const shared = useLabStore((s) => s.inspect.sharedScale);
  const byLevel = method === 'pfi';
  if (byLevel) {
    return (
      <div className="map-rows">
        {r.levels.map((lvl, l) => (
          <div className="map-row" key={l}>
            <span className="row-label">stride {lvl.stride}</span>
            {spec.rows.map((row) => {
              const m = gridMaps(r.maps, method, row.name)[l];
              return m ? (
                <Heatmap
                  key={row.name}
                  values={m.data}
                  height={m.shape[1]!}
                  width={m.shape[2]!}
                  title={`${row.title}, ${lvl.height}×${lvl.width}`}
                  overlay={overlay}
                  link={linkOf(method, m)}
                  {...domainOf(r, method, spec.rows, row, m.level ?? l, shared)}
                />
              ) : null;
            })}
          </div>
        ))}
      </div>
    );
  }
  return (
    <div className="map-rows">
      {spec.rows.map((row) => {
        const maps = gridMaps(r.maps, method, row.name);
        if (maps.length === 0) return null;
        return (
          <div className="map-row" key={row.name}>
            <span className="row-label">{row.title}</span>
            {maps.map((m) => {
              const lvl = r.levels[m.level ?? 0];
              const { domain, note } = domainOf(r, method, spec.rows, row, m.level ?? 0, shared);
              return (
                <Heatmap
                  key={m.level}
                  values={m.data}
                  height={m.shape[1]!}
                  width={m.shape[2]!}
                  title={`stride ${lvl?.stride ?? '?'}, ${m.shape[1]}×${m.shape[2]}`}
                  overlay={overlay}
                  domain={domain}
                  scaleNote={note}
                  link={linkOf(method, m)}
                />
              );
            })}
          </div>
        );
      })}
    </div>
  );
}

function FgdChannels({ r }: { r: InspectionResult }) {
  const t = r.maps.filter((m) => m.name === 'fgd/channel_attention_T' && m.kind === 'bars');
  const s = r.maps.filter((m) => m.name === 'fgd/channel_attention_S' && m.kind === 'bars');
  return (
    <div className="map-row bars-row">
      <span className="row-label">channel attention per level: teacher bars, student line</span>
      {t.map((m, i) => {
        const sm = s.find((x) => x.level === m.level) ?? s[i];
        return sm ? <ChannelBars key={i} title={`stride ${r.levels[m.level ?? 0]?.stride}, ${m.shape[1]} channels`} teacher={m.data} student={sm.data} width={290} /> : null;
      })}
    </div>
  );
}

function Distributions({ r, method }: { r: InspectionResult; method: 'rm' | 'ld' }) {
  const maps = r.maps.filter((m): m is DistributionPanelMap => m.kind === 'distribution' && m.name.startsWith(`${method}/`));
  if (maps.length === 0) {
    return (
      <p className="muted small">
        {method === 'ld'
          ? `Object ${r.ldObject} has no positive anchor at ${r.inputSize}×${r.inputSize}: choose another object or a larger input size.`
          : `No object of this image has 2 or more positive anchors at ${r.inputSize}×${r.inputSize}.`}
      </p>
    );
  }
  const label = (m: DistributionPanelMap) => Array.from(m.positions, (p) => String(p));
  if (method === 'ld') {
    const obj = r.objects[maps[0]!.gt];
    return (
      <div className="map-row">
        <span className="row-label">
          edges of object {maps[0]!.gt} ({obj?.className}) at anchor {maps[0]!.anchor}
        </span>
        {maps.map((m) => (
          <Distribution key={m.name} title={m.name.replace('ld/edge-', '')} data={m.data} bins={m.shape[1]!} labels={label(m)} argmax={m.argmax} width={190} />
        ))}
      </div>
    );
  }
  const objects = [...new Set(maps.map((m) => m.gt))];
  return (
    <div className="map-rows">
      {objects.map((gt) => (
        <div className="map-row" key={gt}>
          <span className="row-label">
            object {gt} ({r.objects[gt]?.className}), {r.objects[gt]?.positives} positives
          </span>
          {maps
            .filter((m) => m.gt === gt)
            .map((m) => (
              <Distribution
                key={m.name}
                title={m.name === 'rm/rank-cls' ? 'class-score rank over its anchors' : 'IoU rank over its anchors'}
                data={m.data}
                bins={m.shape[1]!}
                labels={label(m)}
                argmax={m.argmax}
                width={Math.min(360, 60 + m.shape[1]! * 14)}
              />
            ))}
        </div>
      ))}
    </div>
  );
}

function MethodMaps({ r, imageUrl }: { r: InspectionResult; imageUrl: string }) {
  const methods = useLabStore((s) => s.methods);
  const present = ORDER.filter((id) => r.maps.some((m) => m.name.startsWith(`${id}/`)));
  if (present.length === 0) return <p className="muted">Choose at least one method to see its maps (plain fine-tuning has none).</p>;
  const source = inspectionSource(r);
  return (
    <>
      {present.map((id) => {
        const spec = specOf(r, id, methods);
        return (
          <section key={id} className="method-maps" data-testid={`maps-${id}`}>
            <h3>
              {id === 'rm' ? 'RM: teacher vs student rank distributions per object' : spec!.title}
              <span className="map-source" data-testid="map-source">
                {source}
              </span>
            </h3>
            {spec && <p className="muted small">{spec.note}</p>}
            {spec && <HeatmapRows r={r} method={id} imageUrl={imageUrl} spec={spec} />}
            {id === 'fgd' && <FgdChannels r={r} />}
            {id === 'rm' && <Distributions r={r} method="rm" />}
            {id === 'ld' && <Distributions r={r} method="ld" />}
          </section>
        );
      })}
    </>
  );
}

/** Any image of the set with the current student: detections T and S, and every chosen method's maps. */
export function InspectPanel() {
  const state = useLabStore((s) => s.inspect);
  const data = useLabStore((s) => s.data);
  const busy = useLabStore((s) => isBusyTraining(s.training.status));
  const images = data.status === 'ready' ? data.value[state.split].images : [];
  const r = state.result.status === 'ready' ? state.result.value : null;
  const chosen = images.find((i) => i.id === state.imageId);
  const config = useLabStore((s) => s.config);
  const stale = r ? staleReasons(r, state, config) : [];
  return (
    <section className="card" aria-labelledby="inspect-title" data-testid="inspect-panel">
      <div className="panel-head">
        <h2 id="inspect-title">Inspect</h2>
        {r && (
          <span className="muted small" data-testid="inspect-summary">
            {r.imageId} · {r.width}×{r.height} at {r.inputSize}² · {r.split} split · student step {r.studentStep} · {formatMs(r.elapsedMs)}
          </span>
        )}
      </div>
      <div className="row">
        <select data-testid="inspect-split" value={state.split} onChange={(e) => selectInspectImage(e.target.value as 'train' | 'val', data.status === 'ready' ? (data.value[e.target.value as 'train' | 'val'].images[0]?.id ?? null) : null)}>
          <option value="train">train split</option>
          <option value="val">val split</option>
        </select>
        <select data-testid="inspect-image" value={state.imageId ?? ''} onChange={(e) => selectInspectImage(state.split, e.target.value)} disabled={images.length === 0}>
          {images.map((i) => (
            <option key={i.id} value={i.id}>
              {i.id} · {i.classes.join(', ') || 'no objects'}
            </option>
          ))}
        </select>
        {chosen && chosen.objects > 1 && (
          <label className="inline">
            LD object
            <select data-testid="inspect-ld-object" value={state.ldObject} onChange={(e) => selectInspectImage(state.split, state.imageId, Number(e.target.value))}>
              {chosen.classes.map((c, i) => (
                <option key={i} value={i}>
                  {i}: {c}
                </option>
              ))}
            </select>
          </label>
        )}
        <label className="inline">
          boxes ≥
          <select data-testid="inspect-threshold" value={state.scoreThreshold} onChange={(e) => setInspectThreshold(Number(e.target.value))}>
            {[0.05, 0.1, 0.2, 0.3, 0.5, 0.7].map((t) => (
              <option key={t} value={t}>
                {t.toFixed(2)}
              </option>
            ))}
          </select>
        </label>
        <label className="inline small" title="Off: every map stretches its own range">
          <input type="checkbox" data-testid="shared-scale" checked={state.sharedScale} onChange={(e) => setSharedScale(e.target.checked)} />
          one colour scale per teacher/student pair
        </label>
        <button type="button" data-testid="inspect" disabled={!state.imageId || busy || state.result.status === 'loading'} onClick={() => void inspect()}>
          Inspect
        </button>
        {busy && <span className="muted small">pause the training to inspect</span>}
      </div>
      {state.result.status === 'loading' && <p className="muted">{state.result.detail}…</p>}
      {state.result.status === 'error' && (
        <p className="error" role="alert" data-testid="inspect-error">
          {state.result.error}
        </p>
      )}
      {r && stale.length > 0 && state.result.status === 'ready' && (
        <p className="warn-text stale-note" role="status" data-testid="inspect-stale">
          These maps show {inspectionSource(r)}, but {stale.join('; ')}. Inspect again to update them.
        </p>
      )}
      {r && state.imageUrl && (
        <div className={stale.length > 0 ? 'inspection stale' : 'inspection'} data-testid="inspection" data-stale={stale.length > 0}>
          <div className="map-row">
            {r.teacher && <InputFrame title="Teacher" imageUrl={state.imageUrl} letterbox={r.letterbox} inputSize={r.inputSize} objects={r.objects} detections={r.teacher} testId="inspect-teacher" size={280} />}
            <InputFrame title="Student" imageUrl={state.imageUrl} letterbox={r.letterbox} inputSize={r.inputSize} objects={r.objects} detections={r.student} testId="inspect-student" size={280} />
            {Object.keys(r.terms).length > 0 && (
              <table className="terms" data-testid="inspect-terms">
                <thead>
                  <tr>
                    <th>term (this image)</th>
                    <th>value</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(r.terms).map(([k, v]) => (
                    <tr key={k} data-term={k}>
                      <td className={`term-${termLabel(k).kind}`}>{termLabel(k).text}</td>
                      <td className="mono">{formatValue(v)}</td>
                    </tr>
                  ))}
                </tbody>
                <caption className="muted small">{TERM_LEGEND}</caption>
              </table>
            )}
          </div>
          <p className="muted small">
            Dashed: ground truth. Scores ≥ {r.scoreThreshold.toFixed(2)}. Everything is drawn in the model's letterboxed input. In the charts below,{' '}
            <span style={{ color: TEACHER_COLOUR }}>teacher</span> and <span style={{ color: STUDENT_COLOUR }}>student</span>.
          </p>
          <MethodMaps r={r} imageUrl={state.imageUrl} />
        </div>
      )}
    </section>
  );
}
