import { configDiff, curve, mapCurve, perClassTable, termsOf } from '../run-compare';
import { closeComparison } from '../runs';
import type { RunRecordFull } from '../runs-types';
import { OverlayChart, RUN_COLORS } from './OverlayChart';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : (100 * x).toFixed(1));
const signed = (x: number | null | undefined) => (x === null || x === undefined ? '' : `${x > 0 ? '+' : ''}${(100 * x).toFixed(1)}`);

/** Two or more runs side by side: every loss term and the mAP overlaid, final AP per class with differences, and their configs' differences. */
export function RunComparison({ runs }: { runs: RunRecordFull[] }) {
  const terms = termsOf(runs);
  const table = perClassTable(runs);
  const diff = configDiff(runs);
  return (
    <div className="comparison" data-testid="comparison">
      <div className="panel-head">
        <h3>Comparing {runs.length} runs</h3>
        <button type="button" className="link" onClick={closeComparison}>
          close
        </button>
      </div>
      <div className="legend">
        {runs.map((r, i) => (
          <span key={r.id}>
            <i style={{ background: RUN_COLORS[i % RUN_COLORS.length] }} />
            {r.name}
          </span>
        ))}
      </div>
      <div className="charts">
        <OverlayChart title="mAP (all-point, %)" percent series={runs.map((r) => ({ label: r.name, points: mapCurve(r) }))} />
        {terms.map((t) => (
          <OverlayChart key={t} title={t} series={runs.map((r) => ({ label: r.name, points: curve(r, t) }))} />
        ))}
      </div>
      <h4>Final AP per class (%, all-point), difference from the first run</h4>
      {table.rows.length === 0 ? (
        <p className="muted small">No run was evaluated after training: press Evaluate after a run to add its mAP.</p>
      ) : (
        <table data-testid="compare-per-class">
          <thead>
            <tr>
              <th>class</th>
              {runs.map((r, i) => (
                <th key={r.id} colSpan={i === 0 ? 1 : 2}>
                  {r.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {table.rows.map((row) => (
              <tr key={row.className}>
                <td>
                  {row.className} ({row.numGt})
                </td>
                {row.ap.map((ap, i) => [
                  <td key={`a${i}`}>{pct(ap)}</td>,
                  i > 0 ? (
                    <td key={`d${i}`} className={row.diff[i]! > 0 ? 'up' : row.diff[i]! < 0 ? 'down' : ''}>
                      {signed(row.diff[i])}
                    </td>
                  ) : null,
                ])}
              </tr>
            ))}
            <tr data-testid="compare-map">
              <td>
                <strong>mAP</strong>
              </td>
              {table.map.map((m, i) => [
                <td key={`a${i}`}>
                  <strong>{pct(m)}</strong>
                </td>,
                i > 0 ? (
                  <td key={`d${i}`} className={table.mapDiff[i]! > 0 ? 'up' : table.mapDiff[i]! < 0 ? 'down' : ''}>
                    {signed(table.mapDiff[i])}
                  </td>
                ) : null,
              ])}
            </tr>
          </tbody>
        </table>
      )}
      <h4>Config differences</h4>
      {diff.length === 0 ? (
        <p className="muted small">The configs are the same.</p>
      ) : (
        <table className="diff" data-testid="compare-config">
          <thead>
            <tr>
              <th>setting</th>
              {runs.map((r) => (
                <th key={r.id}>{r.name}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {diff.map((d) => (
              <tr key={d.key}>
                <td>{d.key}</td>
                {d.values.map((v, i) => (
                  <td key={i}>{v}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
