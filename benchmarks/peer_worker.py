"""One implementation's prior for ``compare_peers.py``: loads our weights, then answers timing requests.

    PYTHON benchmarks/peer_worker.py IMPL SHAPE.json WEIGHTS.safetensors

IMPL is ``ours-ref``, ``ours-fast``, ``ours-int8``, ``hf`` (transformers' deprecated Jukebox port),
``jbi`` (jukebox-infer) or ``original:REPO_DIR`` (openai/jukebox). The worker runs in that
implementation's environment and imports only that implementation (openjukebox for ``ours-*``
only). It maps our state dict onto the implementation's keys by an explicit table and stops on
any missing, extra or mis-shaped key. Then it reads JSON lines on stdin and answers on stdout:

    {"op": "time", "batch": B, "tokens": T}   -> {"seconds": s}   (ancestral sampling, temperature 1)
    {"op": "greedy", "tokens": T, "out": PATH} -> {"tokens": [...]} and logits (1, T, V) torch.save'd to PATH
    {"op": "quit"}

Everything the implementation prints goes to stderr (fd 1 is redirected), so that stdout carries
only the protocol.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
import types

import torch

# Our key -> theirs, by one table per layout: the original's (jukebox-infer keeps it) and transformers'
# port (src/openjukebox/convert/hf.py maps the port back to the original). Layer keys are relative to
# our ``transformer.layers.{i}.`` and their ``prior.transformer._attn_mods.{i}.``.
ORIGINAL_KEYS = {
    "x_emb.weight": "prior.x_emb.weight",
    "pos_emb": "prior.pos_emb.pos_emb",
    "x_out.weight": "prior.x_out.weight",
    "labels.genre_emb.weight": "y_emb.bow_genre_emb.emb.weight",
    "labels.artist_emb.weight": "y_emb.artist_emb.emb.weight",
    "labels.total_length_emb.emb.weight": "y_emb.total_length_emb.emb.weight",
    "labels.absolute_pos_emb.emb.weight": "y_emb.absolute_pos_emb.emb.weight",
    "labels.relative_pos_emb.emb.weight": "y_emb.relative_pos_emb.emb.weight",
}
ORIGINAL_LAYER = {
    "ln_0.weight": "ln_0.weight",
    "ln_0.bias": "ln_0.bias",
    "ln_1.weight": "ln_1.weight",
    "ln_1.bias": "ln_1.bias",
    "attn.qkv.weight": "attn.c_attn.w",
    "attn.qkv.bias": "attn.c_attn.b",
    "attn.proj.weight": "attn.c_proj.w",
    "attn.proj.bias": "attn.c_proj.b",
    "mlp.fc.weight": "mlp.c_fc.w",
    "mlp.fc.bias": "mlp.c_fc.b",
    "mlp.proj.weight": "mlp.c_proj.w",
    "mlp.proj.bias": "mlp.c_proj.b",
}
HF_KEYS = {
    "x_emb.weight": "prior.embed_tokens.weight",
    "pos_emb": "prior.pos_emb.pos_emb",
    "x_out.weight": "prior.fc_proj_out.weight",
    "labels.genre_emb.weight": "metadata_embedding.bow_genre_emb.weight",
    "labels.artist_emb.weight": "metadata_embedding.artist_emb.weight",
    "labels.total_length_emb.emb.weight": "metadata_embedding.total_length_emb.emb.weight",
    "labels.absolute_pos_emb.emb.weight": "metadata_embedding.absolute_pos_emb.emb.weight",
    "labels.relative_pos_emb.emb.weight": "metadata_embedding.relative_pos_emb.emb.weight",
}
HF_LAYER = {
    "ln_0.weight": "layer_norm_0.weight",
    "ln_0.bias": "layer_norm_0.bias",
    "ln_1.weight": "layer_norm_1.weight",
    "ln_1.bias": "layer_norm_1.bias",
    "attn.qkv.weight": "attn.c_attn.weight",
    "attn.qkv.bias": "attn.c_attn.bias",
    "attn.proj.weight": "attn.c_proj.weight",
    "attn.proj.bias": "attn.c_proj.bias",
    "mlp.fc.weight": "mlp.c_fc.weight",
    "mlp.fc.bias": "mlp.c_fc.bias",
    "mlp.proj.weight": "mlp.c_proj.weight",
    "mlp.proj.bias": "mlp.c_proj.bias",
}
# Our nn.Linear weights are (out, in); the original's Conv1D (and the port's) are (in, out).
TRANSPOSED = {"attn.qkv.weight", "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight"}


def map_state(ours: dict[str, torch.Tensor], model: torch.nn.Module, hf: bool) -> dict[str, torch.Tensor]:
    """Our state dict under ``model``'s keys; raises listing every unmapped, missing or mis-shaped key."""
    top, layer = (HF_KEYS, HF_LAYER) if hf else (ORIGINAL_KEYS, ORIGINAL_LAYER)
    theirs = model.state_dict()
    out, unmapped, shapes = {}, [], []
    for key, value in ours.items():
        m = re.fullmatch(r"transformer\.layers\.(\d+)\.(.+)", key)
        if m and m[2] in layer:
            name = f"prior.transformer._attn_mods.{m[1]}.{layer[m[2]]}"
            value = value.t() if m[2] in TRANSPOSED else value
        elif not m and key in top:
            name = top[key]
        else:
            unmapped.append(key)
            continue
        if name not in theirs:
            unmapped.append(f"{key} -> {name} (not in the model)")
        elif theirs[name].shape != value.shape:
            shapes.append(f"{key} -> {name}: ours {tuple(value.shape)}, theirs {tuple(theirs[name].shape)}")
            out[name] = None
        else:
            out[name] = value.contiguous()
    missing = sorted(set(theirs) - set(out))
    if unmapped or missing or shapes:
        raise SystemExit(f"weights do not fit: unmapped {unmapped}; missing {missing}; wrong shapes {shapes}")
    return out


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """A safetensors file; peers' environments may lack the package, so a plain reader stands in."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        with open(path, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
            data = bytearray(f.read())
        header.pop("__metadata__", None)
        dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
        return {
            k: torch.frombuffer(data[v["data_offsets"][0] : v["data_offsets"][1]], dtype=dtypes[v["dtype"]])
            .reshape(v["shape"])
            .clone()
            for k, v in header.items()
        }
    return load_file(path)


class Ours:
    """openjukebox, variant ref (per-token path), fast (the default path) or int8 (quantized linears)."""

    def __init__(self, shape: dict, weights: dict, variant: str):
        from openjukebox.prior.config import PriorConfig
        from openjukebox.prior.model import build_prior
        from openjukebox.sampling.sampler import sample_window

        prior = build_prior(PriorConfig.from_dict(shape["config"])).eval()
        prior.load_state_dict(weights, strict=True)
        if variant == "ref":
            self.run = lambda cond, n, **kw: sample_window(prior, cond, n, fast=False, **kw)
        elif variant == "fast":
            self.run = lambda cond, n, **kw: sample_window(prior, cond, n, **kw)
        elif variant == "int8":
            from openjukebox.sampling.fast import prepare_prior

            prior = prepare_prior(prior, quantize="int8")
            self.run = lambda cond, n, **kw: sample_window(prior, cond, n, **kw)
        else:
            raise SystemExit(f"unknown variant of ours: {variant}")
        self.prior = prior

    def sample(self, y: torch.Tensor, tokens: int) -> None:
        self.run(self.prior.condition(y), tokens)

    def greedy(self, y: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        seen = []
        codes = self.run(self.prior.condition(y), tokens, top_k=1, on_logits=lambda t, lg: seen.append(lg))
        return codes, torch.stack(seen, dim=1)


class HF:
    """transformers' port: ``JukeboxPrior.sample``; the greedy check drives its inner ``prior.sample``."""

    def __init__(self, shape: dict, weights: dict):
        from transformers.models.deprecated.jukebox import JukeboxPrior, JukeboxPriorConfig

        c, lc = shape["config"], shape["config"]["labels"]
        config = JukeboxPriorConfig(
            level=0,  # the port counts levels from the top
            hidden_size=c["width"],
            num_layers=c["depth"],
            n_heads=c["heads"],
            n_ctx=c["n_ctx"],
            blocks=c["blocks"],
            attention_pattern="raw_column_previous_row_attention",  # attn_order 2
            attention_multiplier=c["m_attn"],
            mlp_multiplier=c["m_mlp"],
            music_vocab_size=c["l_bins"],
            metadata_dims=[lc["genre_bins"], lc["artist_bins"]],
            max_nb_genres=lc["max_bow_genre_size"],
            timing_dims=lc["t_bins"],
            min_duration=lc["min_duration"],
            max_duration=lc["max_duration"],
            sampling_rate=c["sample_rate"],
            is_encoder_decoder=False,
            nb_relevant_lyric_tokens=0,
            merged_decoder=c["merged_decoder"],
            mask=True,
            init_scale=c["init_scale"],
        )
        self.model = JukeboxPrior(config).eval()
        self.model.load_state_dict(map_state(weights, self.model, hf=True), strict=True)

    def sample(self, y: torch.Tensor, tokens: int) -> None:
        self.model.sample(y.shape[0], metadata=y, temp=1.0, sample_tokens=tokens)

    def greedy(self, y: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        audio_cond, metadata_cond, _ = self.model.get_cond(None, y)
        return self.model.prior.sample(
            1, audio_cond, metadata_cond, None, top_k=1, get_preds=True, sample_tokens=tokens
        )


class Original:
    """The original's ``SimplePrior`` (openai/jukebox, or jukebox-infer's copy of it), built directly."""

    def __init__(self, shape: dict, weights: dict, package: str):
        # Both check token dtypes with isinstance(x, torch.cuda.LongTensor): on the CPU that is torch.LongTensor.
        torch.cuda.LongTensor = torch.LongTensor
        if package == "jukebox":
            _stub_original_imports(shape["folder"])
        SimplePrior = __import__(f"{package}.prior.prior", fromlist=["SimplePrior"]).SimplePrior
        if package == "jukebox":  # its label conditioner makes its timing grid with device="cuda"
            sys.modules["jukebox.prior.conditioners"].t = _CpuTorch("torch")
        c, lc = shape["config"], shape["config"]["labels"]
        n = c["n_ctx"]
        prior_kwargs = dict(
            input_shape=(n,), bins=c["l_bins"], width=c["width"], depth=c["depth"], heads=c["heads"],
            attn_order=c["attn_order"], blocks=c["blocks"], spread=None, attn_dropout=0.0, resid_dropout=0.0,
            emb_dropout=0.0, zero_out=False, res_scale=False, pos_init=False, init_scale=c["init_scale"],
            m_attn=c["m_attn"], m_mlp=c["m_mlp"], checkpoint_res=0, checkpoint_attn=0, checkpoint_mlp=0,
        )  # fmt: skip
        y_cond_kwargs = dict(
            out_width=c["width"], init_scale=c["init_scale"], y_bins=(lc["genre_bins"], lc["artist_bins"]),
            t_bins=lc["t_bins"], sr=c["sample_rate"], min_duration=lc["min_duration"],
            max_duration=lc["max_duration"], max_bow_genre_size=lc["max_bow_genre_size"],
        )  # fmt: skip
        self.model = SimplePrior(
            z_shapes=[(n * 16,), (n * 4,), (n,)],  # the official VQ-VAE's hops 8, 32, 128; this is the top
            l_bins=c["l_bins"], encoder=None, decoder=None, level=2, downs_t=(3, 2, 2), strides_t=(2, 2, 2),
            labels=True, prior_kwargs=prior_kwargs, x_cond_kwargs={}, y_cond_kwargs=y_cond_kwargs,
            prime_kwargs=dict(use_tokens=False, prime_loss_fraction=0.0, n_tokens=0, bins=0),
            copy_input=False, merged_decoder=c["merged_decoder"], single_enc_dec=False,
        )  # fmt: skip
        self.model.eval()
        self.model.load_state_dict(map_state(weights, self.model, hf=False), strict=True)

    def sample(self, y: torch.Tensor, tokens: int) -> None:
        self.model.sample(y.shape[0], y=y, temp=1.0, sample_tokens=tokens)

    def greedy(self, y: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        x_cond, y_cond, _ = self.model.get_cond(None, y)
        return self.model.prior.sample(1, x_cond, y_cond, None, top_k=1, get_preds=True, sample_tokens=tokens)


class _CpuTorch(types.ModuleType):
    """torch, with ``arange(..., device="cuda")`` made on the CPU (for one module of the original)."""

    def __getattr__(self, name: str):
        return getattr(torch, name)

    @staticmethod
    def arange(*args, device=None, **kwargs) -> torch.Tensor:
        return torch.arange(*args, **kwargs)


def _stub_original_imports(folder: str) -> None:
    """What openai/jukebox needs beyond sampling one prior, in this process only: stand-ins for its
    audio packages (imported by the VQ-VAE module that its prior imports) and mpi4py; ``.cuda()``
    as the identity (it moves the start embedding of every call to the GPU unconditionally); and a
    process group of one (it asks torch.distributed for its rank, as its sample.py sets up over MPI)."""
    for name in ("soundfile", "librosa", "mpi4py"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    if not torch.distributed.is_initialized():
        store = os.path.join(folder, "process_group_store")
        torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)


def build(impl: str, shape: dict, weights: dict):
    if impl.startswith("ours-"):
        return Ours(shape, weights, impl.removeprefix("ours-"))
    if impl == "hf":
        return HF(shape, weights)
    if impl == "jbi":
        return Original(shape, weights, "jukebox_infer")
    if impl.startswith("original:"):
        sys.path.insert(0, impl.removeprefix("original:"))
        return Original(shape, weights, "jukebox")
    raise SystemExit(f"unknown implementation {impl!r}")


def main() -> None:
    impl, shape_path, weights_path = sys.argv[1:4]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the implementation prints (progress, "Ancestral sampling ...") goes to stderr
    sys.stdout = sys.stderr
    with open(shape_path) as f:
        shape = json.load(f)
    shape["folder"] = os.path.dirname(os.path.abspath(shape_path))  # the driver's temporary folder
    torch.set_num_threads(shape["threads"])
    torch.set_grad_enabled(False)
    model = build(impl, shape, read_weights(weights_path))
    label_row = torch.tensor([shape["labels"]], dtype=torch.long)
    proto.write(json.dumps({"ready": impl, "torch": torch.__version__}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "time":
            torch.manual_seed(0)
            y = label_row.expand(req["batch"], -1).contiguous()
            start = time.perf_counter()
            model.sample(y, req["tokens"])
            answer = {"seconds": time.perf_counter() - start}
        elif req["op"] == "greedy":
            codes, logits = model.greedy(label_row, req["tokens"])
            torch.save(logits.reshape(1, req["tokens"], -1).float(), req["out"])
            answer = {"tokens": codes.reshape(-1).tolist()}
        else:
            answer = {"error": f"unknown op {req['op']!r}"}
        proto.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
