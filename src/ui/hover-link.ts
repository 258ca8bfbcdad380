import { create } from 'zustand';

/**
 * The map cell under the pointer, shared by the maps of one group (a method's maps of one level:
 * the teacher's and the student's attention, P and F, the masks), so hovering a cell on one
 * outlines the same cell on the others. Only the maps of the hovered group re-render.
 */
export interface MapHover {
  group: string | null;
  x: number;
  y: number;
}

export const useMapHover = create<MapHover>(() => ({ group: null, x: 0, y: 0 }));

export function hoverCell(group: string, x: number, y: number): void {
  const s = useMapHover.getState();
  if (s.group === group && s.x === x && s.y === y) return;
  useMapHover.setState({ group, x, y });
}

export function leaveCell(group: string): void {
  if (useMapHover.getState().group === group) useMapHover.setState({ group: null });
}
