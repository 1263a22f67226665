import math

import torch

from openjukebox.codec.losses import log_stft_distance, spectral_convergence_db


def test_log_stft_distance_is_zero_for_equal_audio_and_counts_quiet_bands():
    torch.manual_seed(0)
    t = torch.arange(22050) / 22050
    tone = torch.sin(2 * math.pi * 440 * t).view(1, 1, -1) * 0.5
    assert float(log_stft_distance(tone, tone)) == 0.0
    # a quiet noise floor hardly moves spectral convergence, but the log distance sees every bin
    hiss = tone + torch.randn_like(tone) * 1e-3
    assert float(spectral_convergence_db(tone, hiss)) < -30
    assert float(log_stft_distance(tone, hiss)) > 10 * float(log_stft_distance(tone, tone * 1.01))
    # a gain of g moves every bin by 20 log10(g) dB, wherever the magnitude is far above the floor
    loud = torch.randn(1, 1, 22050)
    assert abs(float(log_stft_distance(loud, loud * 2)) - 20 * math.log10(2)) < 0.1
