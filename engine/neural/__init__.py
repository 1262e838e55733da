"""The NeuralMAG surrogate: a linear multiscale U-Net for the demag field of a film.

unet (the network), data (training data labelled by the exact FFT demag), train (`nmag train`),
demag (NeuralDemag, method "neural"), probe (error probe and twin runs).
"""
