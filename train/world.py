"""The shapes world: vocabulary, prompts and an exact, seeded renderer at latent resolution.

A clip is one flat-coloured object (ball, square or triangle) on a flat background, 16 s long. The service shows it as
128 frames of 128x128 (8 fps); the model works on a latent video of F=16 frames of SxS=16x16 RGB, normalised as
(rgb - LATENT_MEAN) / LATENT_STD with rgb in [0, 1], which the fixed decoder (linear interpolation, then the inverse
affine map) brings up to the output size. The normalisation centres the data: with the black background the raw
pixels average 0.15, and a noise-prediction network hardly learns a global offset at high noise (it costs the loss
almost nothing: sqrt(abar_1000) * offset), yet the sampler's first data predictions divide that error by
sqrt(abar_1000) ~ 0.07; uncentred, the samples stayed grey noise. The renderer draws the world
directly at latent resolution: latent pixel (i, j) of latent frame k is the area average of the 128x128 picture at
the time of output frame 8k + 3.5 over the 8x8 output pixels it covers (supersampled 8x8 per latent pixel), so
decoding a rendered latent gives what a linear-interpolating camera would film.
"""
import math

import torch

# RGB, 0..255. The first five are the fixed palette.
COLOURS = {
    'red': (220, 40, 40),
    'green': (40, 180, 60),
    'blue': (40, 80, 220),
    'yellow': (230, 210, 40),
    'white': (240, 240, 240),
}
BACKGROUNDS = {'black': (0, 0, 0), 'gray': (110, 110, 110), 'white': (240, 240, 240)}
SHAPES = ['ball', 'square', 'triangle']
MOTIONS = ['moving left', 'moving right', 'moving up', 'moving down', 'bouncing']

# colour x shape x motion combinations never shown in training (each colour, shape and motion appears in some)
HELD_OUT = [
    ('red', 'triangle', 'moving up'),
    ('green', 'square', 'bouncing'),
    ('blue', 'ball', 'moving left'),
    ('yellow', 'triangle', 'moving right'),
    ('white', 'square', 'moving down'),
]

PAD, UNK = 0, 1
WORDS = ['a', 'on', 'background', 'moving', 'bouncing', 'left', 'right', 'up', 'down',
         *COLOURS.keys(), 'black', 'gray', *SHAPES]
VOCAB = ['<pad>', '<unk>', *dict.fromkeys(WORDS)]
NUM_TOKENS = 12

SECONDS, FPS = 16, 8
FRAMES_OUT, SIZE_OUT = SECONDS * FPS, 128
F, S = 16, 16  # latent frames, latent side
LATENT_MEAN, LATENT_STD = 0.15, 0.3  # of the rendered training clips' pixels in [0, 1] (0.155, 0.298 measured)
SUPER = SIZE_OUT // S  # supersampling per latent pixel (8)


def tokenize(text):
    """Lower-case words (letters only) -> ids, padded with PAD / truncated to NUM_TOKENS. Same rule as the TS side."""
    index = {w: i for i, w in enumerate(VOCAB)}
    words = ''.join(c if 'a' <= c <= 'z' else ' ' for c in text.lower()).split()
    ids = [index.get(w, UNK) for w in words][:NUM_TOKENS]
    return ids + [PAD] * (NUM_TOKENS - len(ids))


def prompt(colour, shape, motion, background=None):
    return f'a {colour} {shape} {motion}' + (f' on a {background} background' if background else '')


def latent_times():
    """Seconds at which each latent frame is rendered: output frame j is at j/FPS s, and latent frame k sits at
    output-frame position 8k + 3.5 (half-pixel centres, like the decoder's interpolation)."""
    r = FRAMES_OUT // F
    return (torch.arange(F, dtype=torch.float64) * r + (r - 1) / 2) / FPS


def sample_scenes(gen, n, combos):
    """n random scenes from the allowed (colour, shape, motion) combos; everything else (position, size, speed,
    bounce period and height, background) drawn from `gen`."""
    u = lambda *shape: torch.rand(*shape, generator=gen, dtype=torch.float64)
    idx = torch.randint(len(combos), (n,), generator=gen)
    scenes = []
    r_all, x_all, y_all, v_all, p_all, a_all, ph_all, bgu, bgc = (u(n) for _ in range(9))
    for i in range(n):
        colour, shape, motion = combos[idx[i]]
        bg = None
        if bgu[i] < 0.3:  # 30 %: name a background (black is the default and also nameable)
            names = [b for b in BACKGROUNDS if BACKGROUNDS[b] != COLOURS[colour]]
            bg = names[int(bgc[i] * len(names))]
        scenes.append(dict(
            colour=colour, shape=shape, motion=motion, background=bg,
            radius=0.14 + 0.06 * float(r_all[i]),  # fraction of the frame
            x=float(x_all[i]), y=float(y_all[i]),
            speed=0.3 + 0.4 * float(v_all[i]),  # frames per clip, so >= a quarter of the frame
            period=4.0 + 2.5 * float(p_all[i]),  # seconds per bounce, so >= 2 bounces in 16 s
            height=0.25 + 0.2 * float(a_all[i]),  # bounce height, fraction of the frame
            phase=float(ph_all[i]),
        ))
    return scenes


def centre(scene, t):
    """Object centre (x, y) in frame units at times t (seconds, float64 tensor); y grows downwards."""
    m, s = scene['motion'], scene['speed'] / SECONDS
    x = torch.full_like(t, scene['x'])
    y = torch.full_like(t, scene['y'])
    if m == 'moving left':
        x = x - s * t
    elif m == 'moving right':
        x = x + s * t
    elif m == 'moving up':
        y = y - s * t
    elif m == 'moving down':
        y = y + s * t
    else:  # bouncing: rests on a floor, jumps `height` every `period` s
        r = scene['radius'] * 1.25
        floor = 1 - r - 0.02
        lo = min(floor - r - 0.02, scene['height'])
        y = floor - lo * torch.abs(torch.sin(math.pi * (t / scene['period'] + scene['phase'])))
        x = r + 0.02 + (1 - 2 * r - 0.04) * x
    return x, y


def coverage(shape, dx, dy, r):
    """1 inside the shape centred at 0 (dx, dy: offsets in frame units), else 0. The ball is a disk of radius r, the
    square has half-side 0.85 r, the triangle is equilateral, pointing up, with circumradius 1.25 r."""
    if shape == 'ball':
        return (dx * dx + dy * dy <= r * r)
    if shape == 'square':
        h = 0.85 * r
        return (dx.abs() <= h) & (dy.abs() <= h)
    R = 1.25 * r
    # inside the three half-planes of the triangle with vertices (0,-R), (+-R sin60, R/2)
    s3 = math.sqrt(3)
    return (dy <= R / 2) & (s3 * dx - dy <= R) & (-s3 * dx - dy <= R)


def coverage_at(scenes, t, side, supersample):
    """The object's area-averaged coverage of each pixel of a side x side picture at times t (seconds, float64
    [n, k]: k per scene), [n, k, side, side] float64 in [0, 1] (wrapping at the edges), from `supersample` x
    `supersample` points per pixel."""
    px = (torch.arange(side * supersample, dtype=torch.float64) + 0.5) / (side * supersample)
    out = torch.empty(len(scenes), t.shape[1], side, side, dtype=torch.float64)
    # One scene at a time, counting the points inside as integers: the same values as averaging a float64 picture
    # of all scenes at once (a count over a power of two is exact), without allocating and zeroing that picture,
    # which cost a third of a training step.
    for i, sc in enumerate(scenes):
        cx, cy = centre(sc, t[i])  # [k] each
        # wrapped offsets in (-0.5, 0.5]: the object re-enters on the other side
        dx = torch.remainder(px[None, None, :] - cx[:, None, None] + 0.5, 1.0) - 0.5
        dy = torch.remainder(px[None, :, None] - cy[:, None, None] + 0.5, 1.0) - 0.5
        inside = coverage(sc['shape'], dx, dy, sc['radius'])
        counts = inside.reshape(t.shape[1], side, supersample, side, supersample).sum(dim=(2, 4))
        out[i] = counts.to(torch.float64) / supersample ** 2
    return out


def coverages(scenes, supersample=SUPER):
    """Scenes -> the object's area-averaged coverage of each latent pixel, [n, F, S, S] float64 in [0, 1] (wrapping
    at the edges), from `supersample` x `supersample` points per latent pixel."""
    return coverage_at(scenes, latent_times().expand(len(scenes), F), S, supersample)


def pictures(scenes, frames, supersample=4):
    """Scenes -> the output frames with these indices (int [n, k], 0..FRAMES_OUT-1: one list per scene) as the
    camera films them, RGB in [0, 1], [n, k, 3, SIZE_OUT, SIZE_OUT] float32: what the shape decoder learns to draw."""
    cov = coverage_at(scenes, frames.to(torch.float64) / FPS, SIZE_OUT, supersample)
    return torch.stack([paint(sc, c).transpose(0, 1) for sc, c in zip(scenes, cov)]).to(torch.float32)


def paint(scene, cov):
    """The coverage [...] blending the scene's object colour over its background: RGB in [0, 1], [3, ...] float64."""
    fg = torch.tensor(COLOURS[scene['colour']], dtype=torch.float64) / 255
    bg = torch.tensor(BACKGROUNDS[scene['background'] or 'black'], dtype=torch.float64) / 255
    shape = (3,) + (1,) * cov.dim()
    return bg.view(shape) + (fg - bg).view(shape) * cov[None]


def heading(scene, t):
    """The unit direction (x, y) the object moves in at times t (float64 [k] each; y grows downwards): constant for
    the four moving motions, (0, +-1) while bouncing (down, then up), (0, 0) at rest at the top of a bounce."""
    h = 1e-3
    (x1, y1), (x0, y0) = centre(scene, t + h), centre(scene, t - h)
    v = torch.stack([x1 - x0, y1 - y0])
    return v / v.norm(dim=0).clamp(min=1e-9) * (v.norm(dim=0) > 1e-9)


def channels(masks=False, motion=False):
    """The latent channels of a layout: RGB, then one mask per shape, then the two motion channels."""
    return 3 + (len(SHAPES) if masks else 0) + (2 if motion else 0)


def render(scenes, masks=False, motion=False):
    """Scenes -> normalised latent clips [n, 3, F, S, S] float32 (the coverage blends the object's colour over the
    background's). masks=True appends one channel per shape (SHAPES order), [n, 3 + len(SHAPES), F, S, S]: the
    object's coverage in its own shape's channel, zero in the others, normalised as coverage / LATENT_STD, so that
    the shape is a per-pixel value of about the colour's size, as the colour is (the shape decoder draws it).
    motion=True (with masks) then appends two channels, the object's coverage times its heading (x, y), normalised
    the same way: the motion word becomes a per-pixel value too, which the decoder does not read."""
    covs = coverages(scenes)
    out = torch.zeros(len(scenes), channels(masks, motion), F, S, S, dtype=torch.float32)
    for i, (sc, cov) in enumerate(zip(scenes, covs)):
        out[i, :3] = ((paint(sc, cov) - LATENT_MEAN) / LATENT_STD).to(torch.float32)
        if masks:
            out[i, 3 + SHAPES.index(sc['shape'])] = (cov / LATENT_STD).to(torch.float32)
        if motion:
            hd = heading(sc, latent_times())  # [2, F]
            out[i, -2:] = (cov[None] * hd[:, :, None, None] / LATENT_STD).to(torch.float32)
    return out


def render_channels(scenes, in_chans):
    """render() with the channels a model of in_chans latent channels has: RGB (3), + masks (6), + motion (8)."""
    layouts = {channels(*k): k for k in ((False, False), (True, False), (True, True))}
    if in_chans not in layouts:
        raise ValueError(f'no latent layout has {in_chans} channels (RGB 3, with masks {channels(True)}, with motion '
                         f'{channels(True, True)})')
    return render(scenes, *layouts[in_chans])


def all_combos():
    return [(c, s, m) for c in COLOURS for s in SHAPES for m in MOTIONS]


def train_combos():
    held = set(HELD_OUT)
    return [c for c in all_combos() if c not in held]
