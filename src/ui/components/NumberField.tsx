import { useState } from 'react';

/**
 * A number input that keeps what the person types and reports only valid numbers, so typing
 * "1e-" on the way to "1e-4" does not snap back.
 */
export function NumberField({
  label,
  value,
  onChange,
  step = 'any',
  min,
  integer = false,
  disabled,
  testId,
  title,
}: {
  label: string;
  value: number;
  onChange: (v: number) => void;
  step?: number | 'any';
  min?: number;
  integer?: boolean;
  disabled?: boolean;
  testId?: string;
  title?: string;
}) {
  const [text, setText] = useState(String(value));
  const [seen, setSeen] = useState(value);
  if (seen !== value && Number(text) !== value) {
    setSeen(value);
    setText(String(value));
  }
  const parsed = Number(text);
  const valid = text.trim() !== '' && Number.isFinite(parsed) && (!integer || Number.isInteger(parsed)) && (min === undefined || parsed >= min);
  return (
    <label className={`field${valid ? '' : ' invalid'}`} title={title}>
      <span>{label}</span>
      <input
        type="text"
        inputMode="decimal"
        value={text}
        disabled={disabled}
        data-testid={testId}
        step={step}
        onChange={(e) => {
          setText(e.target.value);
          const v = Number(e.target.value);
          if (e.target.value.trim() !== '' && Number.isFinite(v) && (!integer || Number.isInteger(v)) && (min === undefined || v >= min)) {
            setSeen(v);
            onChange(v);
          }
        }}
      />
    </label>
  );
}
