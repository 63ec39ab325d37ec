"The Pareto front of bench/nfe_sweep.py on points worked out by hand."
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))
from nfe_sweep import pareto, SAMPLERS, ORDER


def test_pareto_keeps_only_undominated_points():
    pts = [{'s_per_1000': 1.0, 'm': 0.2}, {'s_per_1000': 2.0, 'm': 0.5}, {'s_per_1000': 3.0, 'm': 0.4},   # (3, .4) is beaten by (2, .5)
           {'s_per_1000': 4.0, 'm': 0.9}, {'s_per_1000': 4.0, 'm': 0.8}, {'s_per_1000': 5.0, 'm': float('nan')}]
    assert [(q['s_per_1000'], q['m']) for q in pareto(pts, 'm')] == [(1.0, 0.2), (2.0, 0.5), (4.0, 0.9)]
    low = pareto(pts, 'm', higher=False)                       # lower is better (FCD): only the fastest-and-lowest point
    assert [(q['s_per_1000'], q['m']) for q in low] == [(1.0, 0.2)]


def test_every_process_has_its_samplers():
    assert {k: [n for n, _ in v] for k, v in SAMPLERS.items()} == {
        'flow_matching': ['euler', 'midpoint', 'heun', 'rk4'], 'diffusion': ['ddpm', 'ddim'], 'stochastic_interpolant': ['ode', 'sde']}
    assert ORDER['rk4'] == 4 and ORDER['euler'] == 1
