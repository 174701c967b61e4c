"""Loss curve of a training run (one log per phase, in order) as a PNG.
    python3 train/plot_loss.py OUT.png train/runs/NAME/log.jsonl [train/runs/NAME2/log.jsonl ...]
Each curve is labelled with its run folder; the axis labels come from the runs' args.json (prediction, weighting, batch).
"""
import json
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def main():
    out, logs = sys.argv[1], sys.argv[2:]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    offset, wall, labels = 0, 0.0, set()
    for src in logs:
        args = json.load(open(os.path.join(os.path.dirname(src), 'args.json')))['args']
        labels.add((args['prediction'], args['weighting'], args['batch']))
        rows = list(map(json.loads, open(src)))
        done = [r for r in rows if r.get('done')]
        rows = [r for r in rows if 'loss' in r]
        if offset:
            ax.axvline(offset, color='gray', lw=0.8, ls='--')
        ax.plot([offset + r['step'] for r in rows], [r['loss'] for r in rows], lw=1, label=os.path.basename(os.path.dirname(os.path.abspath(src))))
        offset += done[0]['steps'] if done else rows[-1]['step']
        wall += done[0]['wall_s'] if done else rows[-1]['wall_s']
    ax.set_yscale('log')
    batches = sorted({b for _, _, b in labels})
    ax.set_xlabel(f"step (batch {', '.join(map(str, batches))})")
    ax.set_ylabel('loss: ' + ', '.join(sorted({f'{p} MSE, {w} weights' for p, w, _ in labels})), fontsize=8)
    ax.set_title(f'{offset} steps, {wall / 60:.0f} min', fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == '__main__':
    main()
