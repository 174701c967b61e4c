// The U-ViT network as a chain of 2n+1 blocks (n = depth//2), numbered by chain index:
//   in_blocks.i  -> i            (0 <= i < n)
//   mid_block    -> n
//   out_blocks.j -> n + 1 + j    (0 <= j < n); out_blocks.j consumes the skip made by in_blocks.(n-1-j)
// A segment is a contiguous chain range built as one ONNX model; the partitioner (partition/) decides where the
// cuts go and which stage runs each segment. The weights, the reference forward and the graph builder name blocks
// and tensors by these rules.

/** chain index helpers */
export const chain = {
  length: (n: number) => 2 * n + 1,
  inBlock: (i: number) => i,
  mid: (n: number) => n,
  outBlock: (n: number, j: number) => n + 1 + j,
  /** official module prefix of a chain index, e.g. "in_blocks.0", "mid_block", "out_blocks.2" */
  name(n: number, c: number): string {
    if (c < n) return `in_blocks.${c}`;
    if (c === n) return 'mid_block';
    return `out_blocks.${c - n - 1}`;
  },
  /** for an out-block chain index, the in-block index whose skip it consumes */
  skipSource: (n: number, c: number) => 2 * n - c,
};

export interface Segment {
  /** position along the stream route (0 = first, takes the model inputs) */
  index: number;
  /** stage (process) that holds and runs this segment */
  stage: number;
  /** chain range [start, end) */
  start: number;
  end: number;
  /** true when start === 0: the segment embeds x / timesteps / y or context into tokens */
  embed: boolean;
  /** true when end === 2n+1: the segment ends with norm, decoder_pred, unpatchify and final_layer, output `eps` */
  head: boolean;
  /** in-block indices i (skip made by in_blocks.i) that this segment consumes but another segment made, ascending */
  skipsIn: number[];
  /** in-block indices i made here and consumed by another segment, ascending */
  skipsOut: number[];
}

// ONNX tensor names of a segment model (fixed; the builder, engine and stage servers all rely on them):
//   embed inputs:  x [B,C,H,W] or [B,C,F,H,W] float32, timesteps [B] float32, y [B] int64 (class) | context [B,n,clip_dim] float32 (text)
//   stream input:  h_in  [B, T, D]   (when !embed)
//   stream output: h_out [B, T, D]   (when !head)
//   head output:   eps   (same shape as x)
//   skip inputs:   skip_<i> [B, T, D] for i in skipsIn;  skip outputs: skip_<i> for i in skipsOut
// T = extras + tokens; the batch dim B is dynamic, and for video configs the frame count is dynamic too.
export const TENSOR = {
  x: 'x',
  timesteps: 'timesteps',
  y: 'y',
  context: 'context',
  hIn: 'h_in',
  hOut: 'h_out',
  eps: 'eps',
  skip: (i: number) => `skip_${i}`,
} as const;
