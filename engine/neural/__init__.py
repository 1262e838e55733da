"""The NeuralMAG surrogate: linear multi-level (U-shaped) networks for the demag field of films.

lean (the shipped generation-2 network: exact near field plus learned coarse levels), unet (the
first network, kept for its weights), near_fft (the near field by FFT), data (training data
labelled by the exact FFT demag; strips: relaxed thin-strip states), train (`nmag train`), card
and card_measure (the model card), demag (NeuralDemag, method "neural"), probe and twin (error
probe and twin runs).
"""
