/**
 * Size and cost of a graph: parameters, and multiply-accumulates (MACs) per image for the
 * convolutions and matrix products, counted from the real output shapes of one run.
 */
import type { TrainableGraph } from './executor';

export interface GraphProfile {
  parameters: number;
  /** Multiply-accumulates for one image at the profiled input size (bias adds not counted). */
  macs: number;
  macsByOp: Record<string, number>;
  inputShape: number[];
}

export function profileGraph(graph: TrainableGraph, inputShapes?: Record<string, number[]>): GraphProfile {
  const shapes = graph.nodeShapes(graph.outputs, inputShapes);
  const macsByOp: Record<string, number> = {};
  let macs = 0;
  for (const node of graph.nodeList()) {
    const out = shapes.get(node.name)?.[0];
    const weightShape = (i: number) => shapes.get(node.inputs[i]?.split(':')[0] ?? '')?.[0];
    if (!out) continue;
    let m = 0;
    const batch = out[0] ?? 1;
    if (node.op === 'Conv2D' || node.op === '_FusedConv2D') {
      const w = weightShape(1);
      if (w) m = (out.reduce((a, b) => a * b, 1) / batch) * w[0]! * w[1]! * w[2]!;
    } else if (node.op === 'DepthwiseConv2dNative' || node.op === 'FusedDepthwiseConv2dNative') {
      const w = weightShape(1);
      if (w) m = (out.reduce((a, b) => a * b, 1) / batch) * w[0]! * w[1]!;
    } else if (node.op === 'MatMul' || node.op === '_FusedMatMul' || node.op.startsWith('BatchMatMul')) {
      const a = weightShape(0);
      if (a) m = (out.reduce((x, y) => x * y, 1) / (out.length > 2 ? batch : 1)) * a[a.length - 1]!;
    }
    if (m > 0) {
      macsByOp[node.op] = (macsByOp[node.op] ?? 0) + m;
      macs += m;
    }
  }
  const first = graph.inputs[0];
  return { parameters: graph.parameterCount(), macs, macsByOp, inputShape: first ? shapes.get(first.name)?.[0] ?? first.shape : [] };
}
