import { useEffect } from 'react';
import { BackendPanel } from './components/BackendPanel';
import { DataPanel } from './components/DataPanel';
import { DerivePanel } from './components/DerivePanel';
import { DetectionView } from './components/DetectionView';
import { DeviceLostBanner } from './components/DeviceLostBanner';
import { EvalPanel } from './components/EvalPanel';
import { ExportPanel } from './components/ExportPanel';
import { FirstRunPath } from './components/FirstRunPath';
import { ImagePicker } from './components/ImagePicker';
import { InspectPanel } from './components/InspectPanel';
import { MethodsPanel } from './components/MethodsPanel';
import { ModelCard, PairProblems } from './components/ModelCard';
import { RunsPanel } from './components/RunsPanel';
import { SchedulePanel } from './components/SchedulePanel';
import { StatusBar } from './components/StatusBar';
import { TrainingPanel } from './components/TrainingPanel';
import { boot, MIN_SCORE_THRESHOLD, setScoreThreshold } from './controller';
import { useLabStore } from './store';

export function App() {
  useEffect(() => {
    void boot();
  }, []);
  const threshold = useLabStore((s) => s.scoreThreshold);
  return (
    <div className="app">
      <a className="skip-link" href="#train" data-testid="skip-to-train">
        Skip to Train
      </a>
      {/* The banner of a lost GPU device stays in view with the header, wherever the page is scrolled. */}
      <div className="top">
        <header>
          <h1>Distill Lab</h1>
          <p className="tagline">Knowledge distillation for object detectors, on your own GPU.</p>
          <StatusBar />
        </header>
        <DeviceLostBanner />
      </div>
      <FirstRunPath />
      <main>
        <aside>
          <ModelCard role="teacher" />
          <ModelCard role="student" />
          <PairProblems />
          <DataPanel />
          <MethodsPanel />
          <DerivePanel />
          <BackendPanel />
        </aside>
        <div className="content">
          <div className="train-group">
            <SchedulePanel />
            <TrainingPanel />
          </div>
          <InspectPanel />
          <EvalPanel />
          <ExportPanel />
          <RunsPanel />
          <section className="card quick-look">
            <div className="panel-head">
              <h2>Quick look</h2>
              <label className="slider inline">
                <span>
                  score ≥ <output>{threshold.toFixed(2)}</output>
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
            </div>
            <ImagePicker />
          </section>
          <DetectionView />
        </div>
      </main>
    </div>
  );
}
