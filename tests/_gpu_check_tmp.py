import sys, math, torch
sys.path.insert(0, "tests"); sys.path.insert(0, ".")
print("cuda", torch.cuda.is_available(), torch.__version__)
import test_generative as tg
from torch.utils.data import TensorDataset
from nn_handler import NNHandler, VPSDE, denoising_score_matching
h = NNHandler(tg.ExactGaussianScore, device="cuda", model_type="score_based", kind="ve")
h.set_sde(tg.VESDE, **tg.VE_KW)
x = h.sample((4000, 2), 150, corrector_steps=1, bar=False)
print("sample", x.device, x.mean(0).tolist(), torch.cov(x.T).tolist())
d = torch.randn(300, 2, device="cuda")
ll = h.log_likelihood(d, ode_steps=40, method="RK4")
print("ll", ll.device, ((ll - tg.gaussian_log_density(d, 0., 1.)).abs() / tg.gaussian_log_density(d, 0., 1.).abs()).max().item())
h2 = NNHandler(tg.TinyScoreNet, device="cuda", model_type="score_based")
h2.set_sde(VPSDE, **tg.VP_KW); h2.set_loss_fn(denoising_score_matching)
h2.set_optimizer(torch.optim.Adam, lr=5e-3)
h2.set_train_loader(TensorDataset(torch.randn(512, 2) + 3), batch_size=64, shuffle=True)
h2.train(2, progress_bar=False, ema_decay=0.9)
s = h2.sample((100, 2), 20, bar=False)
print("trained", h2.train_losses, s.device, h2.ema is not None)
print("GPU-CHECK-OK")
