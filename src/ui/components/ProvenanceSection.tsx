import { modelCardFacts, type ModelCardData } from '../../provenance/model-card';
import './runs.css';

/** The model card of a loaded model, folded: how it was made (teacher, derivation, methods, data, evaluation). */
export function ProvenanceSection({ card }: { card: ModelCardData }) {
  return (
    <details className="provenance" data-testid="provenance">
      <summary>How this model was made</summary>
      {modelCardFacts(card).map(({ section, rows }) => (
        <div key={section} className="provenance-section">
          <h4>{section}</h4>
          <dl className="facts">
            {rows.map(([k, v]) => (
              <div key={k} className="fact-row" data-testid={`provenance-${section.toLowerCase()}-${k.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
        </div>
      ))}
      <p className="muted small">Parameters marked * differ from the paper defaults. The zip holds model-card.json and MODEL_CARD.md.</p>
    </details>
  );
}
