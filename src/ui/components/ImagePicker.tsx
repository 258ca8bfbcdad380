import { useRef, useState, type DragEvent } from 'react';
import { detectFile } from '../controller';
import { useLabStore } from '../store';

/** Drop a photo anywhere on the zone, or pick one; the teacher runs on it in the worker. */
export function ImagePicker() {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const ready = useLabStore((s) => s.models.teacher.status === 'ready');
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const file = e.dataTransfer.files[0];
    if (file) void detectFile(file);
  };
  return (
    <div
      className={`dropzone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <p>Drop a photo here, or</p>
      <button type="button" disabled={!ready} onClick={() => input.current?.click()}>
        Pick a photo…
      </button>
      <input
        ref={input}
        data-testid="image-input"
        type="file"
        accept="image/*"
        hidden
        onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) void detectFile(file);
          e.target.value = '';
        }}
      />
    </div>
  );
}
