// uvit export-clip: a Hugging Face CLIP checkpoint's text tower (model.safetensors or .pth + config.json) as one ONNX
// file, input_ids [B,T] int64 -> last_hidden_state [B,T,D]: what a backend group's text_encoder.onnx names, with the
// clip-bpe tokenizer on the same checkpoint's vocab.json and merges.txt.
import { writeFileSync } from 'node:fs';
import { str, type Command } from '../command.ts';
import { requireFile, requireOutputDir } from '../io.ts';

export const exportClipCommand: Command = {
  name: 'export-clip',
  summary: 'write a Hugging Face CLIP text encoder (e.g. openai/clip-vit-large-patch14) as ONNX for the text_encoder config',
  usage: 'export-clip --weights model.safetensors --config config.json --out clip_text.onnx',
  options: {
    weights: { type: 'string', value: 'model.safetensors', required: true, help: 'CLIPTextModel or CLIPModel weights (safetensors or .pth); the vision tower is ignored' },
    config: { type: 'string', value: 'config.json', required: true, help: 'the checkpoint\'s Hugging Face config.json' },
    out: { type: 'string', value: 'clip_text.onnx', required: true, help: 'output ONNX file (input_ids -> last_hidden_state)' },
  },
  async run(v, ctx) {
    const t0 = performance.now();
    const weights = requireFile('weights', str(v.weights)!);
    const out = requireOutputDir('out', str(v.out)!);
    const { buildClipText, readClipTextConfig } = await import('../../model/build/clipText.ts');
    const { checkClipText } = await import('../../engine/clipText.ts');
    const { openTensorFile } = await import('../../model/tensorFile.ts');
    const cfg = readClipTextConfig(requireFile('config', str(v.config)!));
    const file = openTensorFile(weights);
    try {
      const prefix = checkClipText(file, cfg);
      writeFileSync(out, buildClipText(cfg, (n) => file.readFloat32(prefix + n)));
    } finally {
      file.close();
    }
    ctx.log(`export-clip: ${cfg.num_hidden_layers} layers, width ${cfg.hidden_size}, ${cfg.max_position_embeddings} tokens -> ${out} (${(performance.now() - t0).toFixed(0)} ms)`);
  },
};
