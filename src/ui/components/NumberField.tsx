import { useEffect, useState } from 'react';
import { useLabStore } from '../store';

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
  experiment = true,
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
  /** Part of the experiment (the default): while it holds an invalid value, Train waits and says why. */
  experiment?: boolean;
}) {
  const [text, setText] = useState(String(value));
  const [seen, setSeen] = useState(value);
  if (seen !== value && Number(text) !== value) {
    setSeen(value);
    setText(String(value));
  }
  const parsed = Number(text);
  const valid = text.trim() !== '' && Number.isFinite(parsed) && (!integer || Number.isInteger(parsed)) && (min === undefined || parsed >= min);
  const key = testId ?? label;
  useEffect(() => {
    if (!experiment) return;
    setFieldValidity(key, label, valid);
    return () => setFieldValidity(key, label, true);
  }, [experiment, key, label, valid]);
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

/** Experiment fields holding a value that does not parse: Train is blocked until they are fixed. */
function setFieldValidity(key: string, label: string, valid: boolean): void {
  useLabStore.setState((s) => {
    const has = key in s.invalidFields;
    if (valid === !has) return s;
    const invalidFields = { ...s.invalidFields };
    if (valid) delete invalidFields[key];
    else invalidFields[key] = label;
    return { invalidFields };
  });
}
