"""jukebox-train: build the dataset, train the VQ-VAE and priors, export to the engine.

  data       build the dataset from Debian packages (debian_data.py)
  synthetic  a tiny synthetic dataset in the same layout (CI smoke run)
  vqvae      train the VQ-VAE (train_vqvae_run.py)
  codes      encode the dataset with a trained VQ-VAE (train_vqvae_run.py)
  prior      train a prior or upsampler on the codes (train_prior.py)
  export     write the engine's safetensors files (export.py)
  eval       held-out metrics of a trained model set (evaluate.py)
  figures    spectrogram PNGs of generated samples for the model card (figures.py)
"""
import importlib
import sys

COMMANDS = {
    'data': ('jukebox_train.debian_data', 'main'),
    'synthetic': ('jukebox_train.synthetic', 'main'),
    'vqvae': ('jukebox_train.train_vqvae_run', 'main'),
    'codes': ('jukebox_train.train_vqvae_run', 'codes_main'),
    'eval-vqvae': ('jukebox_train.train_vqvae_run', 'eval_main'),
    'prior': ('jukebox_train.train_prior', 'main'),
    'eval-prior': ('jukebox_train.train_prior', 'eval_main'),
    'export': ('jukebox_train.export', 'main'),
    'eval': ('jukebox_train.evaluate', 'main'),
    'figures': ('jukebox_train.figures', 'main'),
}


def main(argv):
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    module, fn = COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), fn)(argv[1:]) or 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
