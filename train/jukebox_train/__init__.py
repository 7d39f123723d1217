"""Training code for jukebox-node's models: dataset builder, VQ-VAE and priors in PyTorch,
export to the engine's safetensors format. Runs with Debian's python3-torch 1.13 (CPU) or any
newer torch with a GPU (`--device cuda`)."""
