"""Fidelity of molbench's crystal coverage to CDVAE's `compute_cov` (txie-93/cdvae, scripts/eval_utils.py) on reference
data: the first 300 perov-5 validation crystals as "generated" against the first 300 test crystals as reference.
Fingerprinting the 600 crystals takes ~2-3 min on one core, which is why this lives here and not in the notebook."""
import hashlib, time
import numpy as np
import pytest

N = 300
CUTOFFS = (0.2, 4.0)   # CDVAE's COV_Cutoffs for perov-5 (structure, composition)


def cov_cdvae(gs, gc, rs, rc, mean, std, s_cut, c_cut):
    "CDVAE's compute_cov, transcribed independently in plain numpy: scale (NaN -> 0), separate minima, then AND."
    def scale(X):
        Y = (np.asarray(X, float) - mean) / std
        Y[np.isnan(Y)] = 0.0
        return Y
    gc, rc = scale(gc), scale(rc)
    ds = np.sqrt(((gs[:, None, :] - rs[None, :, :]) ** 2).sum(-1))   # (G, R)
    dc = np.sqrt(((gc[:, None, :] - rc[None, :, :]) ** 2).sum(-1))
    recall = np.mean((ds.min(axis=0) <= s_cut) & (dc.min(axis=0) <= c_cut))
    precision = np.sum((ds.min(axis=1) <= s_cut) & (dc.min(axis=1) <= c_cut)) / len(gs)
    return float(recall), float(precision)


@pytest.fixture(scope='module')
def perov():
    from molbench.data.crystals import load_crystals
    from molbench.metrics.crystals import crystal_reference
    gen = list(load_crystals('perov5', 'val', n=N, progress=False))
    ref = list(load_crystals('perov5', 'test', n=N, progress=False))
    t0 = time.time()
    G, R = crystal_reference(gen), crystal_reference(ref)
    print(f'fingerprints of {len(gen) + len(ref)} perov-5 crystals: {time.time() - t0:.1f} s')
    return gen, ref, G, R


def test_scaler_constants_are_cdvae():
    from molbench.metrics.crystals import CDVAE_COMP_SCALER_MEANS as M, CDVAE_COMP_SCALER_STDS as S
    assert M.shape == S.shape == (132,)
    # sha256 of CDVAE's CompScalerMeans then CompScalerStds (cdvae/common/constants.py) as little-endian float64
    assert hashlib.sha256(np.concatenate([M, S]).astype('<f8').tobytes()).hexdigest() == \
        '396a806b2002e86ddce18ab2b50445d48f174c282a7f496f3fd9a81d02426a04'
    assert (M[0], S[-1]) == (21.194441759304013, 85.980205895116)


def test_fingerprints_are_matminers(perov):
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
    from matminer.featurizers.composition.composite import ElementProperty
    from molbench.data.crystals import crystal_to_structure
    gen, _, G, _ = perov
    cnn, ep = CrystalNNFingerprint.from_preset('ops'), ElementProperty.from_preset('magpie')
    for k in (0, 137, 299):
        s = crystal_to_structure(gen[k])
        np.testing.assert_allclose(G.struct_fp[k], np.mean([cnn.featurize(s, i) for i in range(len(s))], axis=0), atol=1e-12)
        np.testing.assert_allclose(G.comp_fp[k], ep.featurize(s.composition), atol=1e-12)


def test_cov_equals_cdvae_transcription(perov):
    from molbench.metrics.crystals import evaluate_crystals, CDVAE_COMP_SCALER_MEANS as M, CDVAE_COMP_SCALER_STDS as S
    gen, ref, G, R = perov
    assert G.fp_ok.all() and R.fp_ok.all()                                     # nothing failed or timed out
    out = evaluate_crystals(G, R, dataset='perov5')
    want = cov_cdvae(G.struct_fp, G.comp_fp, R.struct_fp, R.comp_fp, M, S, *CUTOFFS)
    assert (out['cov_recall'], out['cov_precision']) == pytest.approx(want, abs=1e-12)
    assert (out['cov_recall'], out['cov_precision']) == (198 / N, 183 / N)       # 0.66 / 0.61
    assert (out['cov_recall_joint'], out['cov_precision_joint']) == (68 / N, 64 / N)   # the stricter rule: 0.2267 / 0.2133
    assert out['w1_n_samples'] == G.valid.sum() < 1000 and not out['w1_cdvae_protocol']  # fewer than 1000 valid: flagged
    # the same through raw records (fingerprinted inside evaluate_crystals), on the first 20 "generated" crystals
    out20 = evaluate_crystals(gen[:20], R, dataset='perov5')
    want20 = cov_cdvae(G.struct_fp[:20], G.comp_fp[:20], R.struct_fp, R.comp_fp, M, S, *CUTOFFS)
    assert (out20['cov_recall'], out20['cov_precision']) == pytest.approx(want20, abs=1e-12)
