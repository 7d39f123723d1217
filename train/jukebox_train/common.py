"""Small pieces every training command shares: where the repository is, the dataset
manifest, atomic checkpoints, and the engine's artist/genre name rule."""
import json
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_manifest(data):
    with open(os.path.join(data, 'manifest.json')) as f:
        return json.load(f)


def save_checkpoint(path, state):
    """torch.save to a temporary name, then rename: a crash mid-save keeps the previous checkpoint."""
    import torch  # here, so the dataset builder does not need torch to import this module

    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)


def norm_v2(s):
    """The original's v2 artist/genre name rule, as the engine applies it (lib/labels/vocab.ts):
    lowercase, runs of characters outside [a-z0-9] -> '_', no leading or trailing '_'."""
    return re.sub(r'^_+|_+$', '', re.sub(r'[^a-z0-9]+', '_', s.lower()))
