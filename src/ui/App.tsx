import { useEffect } from 'react';
import { BackendPanel } from './components/BackendPanel';
import { DetectionView } from './components/DetectionView';
import { ImagePicker } from './components/ImagePicker';
import { TeacherCard } from './components/ModelCard';
import { boot, MIN_SCORE_THRESHOLD, setScoreThreshold } from './controller';
import { useLabStore } from './store';

export function App() {
  useEffect(() => {
    void boot();
  }, []);
  const threshold = useLabStore((s) => s.scoreThreshold);
  return (
    <div className="app">
      <header>
        <h1>Distill Lab</h1>
        <p className="tagline">Knowledge distillation for object detectors, on your own GPU.</p>
      </header>
      <main>
        <aside>
          <BackendPanel />
          <TeacherCard />
          <section className="card">
            <h2>Detection settings</h2>
            <label className="slider">
              <span>
                Score threshold <output>{threshold.toFixed(2)}</output>
              </span>
              <input
                type="range"
                min={MIN_SCORE_THRESHOLD}
                max={0.95}
                step={0.05}
                value={threshold}
                data-testid="score-threshold"
                onChange={(e) => setScoreThreshold(Number(e.target.value))}
              />
            </label>
          </section>
        </aside>
        <div className="content">
          <ImagePicker />
          <DetectionView />
        </div>
      </main>
    </div>
  );
}
