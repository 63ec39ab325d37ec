"""Fuzzed malformed input: the SMILES path, CIF parsing, the file loaders (XYZ, SDF, CSV, CIF) and both evaluators never
raise on bad entries; every bad entry is counted with a reason, and what the valid entries give is unchanged."""
import os, re, tempfile, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem
RDLogger.DisableLog('rdApp.*')

# few examples, no deadline, reproducible (derandomize) and no example database written into the repository
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

@pytest.fixture(scope='module', autouse=True)
def private_cache():
    "A throwaway molbench cache for this module (file loaders write parses there)."
    old = os.environ.get('MOLBENCH_CACHE')
    with tempfile.TemporaryDirectory() as d:
        os.environ['MOLBENCH_CACHE'] = d
        yield Path(d)
    if old is None: os.environ.pop('MOLBENCH_CACHE', None)
    else: os.environ['MOLBENCH_CACHE'] = old

def quiet(fn, *a, **kw):
    "Call `fn` with warnings silenced (the loaders warn about every skipped record, by design)."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)

def scratch(name: str, data) -> Path:
    "Write `data` (text or bytes) to a fresh file `name` in a new temporary folder."
    p = Path(tempfile.mkdtemp()) / name
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return p

# ---------------------------------------------------------------------------------------------------------------------
# SMILES: BOOM rows
# ---------------------------------------------------------------------------------------------------------------------
VALID_SMILES = ['CCO', 'c1ccccc1', 'CC(=O)Oc1ccccc1C(=O)O', 'CN1CCC[C@H]1c1cccnc1', 'O=C=O', 'C1CCCCC1',
                'CC(C)Cc1ccc(cc1)C(C)C(=O)O', 'N#N', 'OCC(O)CO', 'CCN(CC)CC', 'Clc1ccccc1Br', 'C[N+](C)(C)C']

@st.composite
def mutated_smiles(draw):
    "A valid SMILES with a character inserted, deleted or replaced."
    s = draw(st.sampled_from(VALID_SMILES))
    i = draw(st.integers(0, len(s)))
    c = draw(st.sampled_from(list('()[]=#@+-123%.*X c1')))
    return draw(st.sampled_from([s[:i] + c + s[i:], s[:i] + s[i + 1:], s[:i] + c + s[i + 1:]]))

garbage_smiles = st.one_of(
    st.text(alphabet='CNOSFPclnos()[]=#@+-1234%/\\.Hh*Xx ', max_size=14), st.text(max_size=10), mutated_smiles(),
    st.sampled_from(['', ' ', 'C1CC', 'c1cccc1', '[Xx]', 'C(C', 'CC)', '[C@@H', 'C==C', 'c', '[NH5]']),
    st.none(), st.just(float('nan')), st.integers(-5, 5))

def parses(s) -> bool:
    return isinstance(s, str) and bool(s) and Chem.MolFromSmiles(s) is not None

@FUZZ
@given(rows=st.lists(st.one_of(st.sampled_from(VALID_SMILES), garbage_smiles), min_size=1, max_size=12))
def test_boom_load_splits_counts_every_unparsable_smiles(rows):
    from molbench.boom.runner import Profile, load_splits
    frames = {s: pd.DataFrame({'id': np.arange(len(rows)) + 1000 * k, 'smiles': rows, 'y': np.arange(len(rows), dtype=float)})
              for k, s in enumerate(('train', 'id', 'ood'))}
    loader = lambda task, split, **kw: frames[split].copy()
    got, excluded = load_splits('density', Profile('fuzz', exclusions='parse'), loader=loader)
    for split, df in frames.items():
        ok = np.array([parses(s) for s in df.smiles])
        assert got[split].id.tolist() == df.id[ok].tolist()                     # every parsable row kept, in order
        ex = excluded[excluded.split == split]
        assert sorted(ex.id.tolist()) == sorted(df.id[~ok].tolist())            # every other one counted ...
        assert (ex.reason == 'SMILES does not parse').all()                      # ... with its reason
        assert len(got[split]) + len(ex) == len(df)

@pytest.fixture(scope='module')
def forest():
    "A tiny random forest fitted on the valid SMILES (target: heavy-atom count)."
    from molbench.boom.models import RandomForestModel
    df = pd.DataFrame({'id': range(len(VALID_SMILES)), 'smiles': VALID_SMILES,
                       'y': [Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in VALID_SMILES]})
    m = RandomForestModel(n_estimators=4, val_frac=0.2).fit(df)
    return m, df, m.predict(df)

@FUZZ
@given(garbage=st.lists(garbage_smiles, min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_property_model_predictions_of_valid_rows_unchanged_by_garbage(forest, garbage, seed):
    m, valid, pred_valid = forest
    bad = pd.DataFrame({'id': np.arange(len(garbage)) + 10_000, 'smiles': garbage, 'y': 0.0})
    mixed = pd.concat([valid, bad], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    m.excluded = {}
    pred = quiet(m.predict, mixed)
    ok = np.array([parses(s) for s in mixed.smiles])
    assert np.isnan(pred[~ok]).all() and np.isfinite(pred[ok]).all()            # garbage → NaN, parsable → a number
    assert set(m.excluded) == set(mixed.id[~ok]) and set(m.excluded.values()) <= {'SMILES does not parse'}
    is_valid = mixed.id < 10_000
    np.testing.assert_array_equal(pred[is_valid.to_numpy()], pred_valid[mixed.id[is_valid].to_numpy()])

@FUZZ
@given(s=st.one_of(st.text(alphabet='CNOcn()=#[]+-12Hh', max_size=8), st.text(max_size=6), st.none()))
def test_embed_conformer_returns_a_reason_instead_of_raising(s):
    from molbench.data.boom import embed_conformer
    r = embed_conformer(s)
    if isinstance(r, str):   # a reason: the SMILES does not parse, or it parses and RDKit cannot embed it
        assert r == 'SMILES does not parse' if not parses(s) else r in ('ETKDG embedding failed', 'non-finite coordinates')
    else:
        z, pos, status = r
        assert parses(s) and len(z) == len(pos) and np.isfinite(pos).all()

# ---------------------------------------------------------------------------------------------------------------------
# CIF: molbench.data.crystals.parse_cifs, and load_structures on CSV files and CIF folders
# ---------------------------------------------------------------------------------------------------------------------
def _valid_structures():
    from pymatgen.core import Lattice, Structure
    return {'srtio3': Structure(Lattice.cubic(3.905), ['Sr', 'Ti', 'O', 'O', 'O'],
                                [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]]),
            'nacl': Structure(Lattice.cubic(5.64), ['Na'] * 4 + ['Cl'] * 4,
                              [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]]),
            'cscl': Structure(Lattice.cubic(4.12), ['Cs', 'Cl'], [[0, 0, 0], [.5, .5, .5]]),
            'si': Structure(Lattice.from_parameters(3.84, 3.84, 3.84, 60, 60, 60), ['Si', 'Si'], [[0, 0, 0], [.25, .25, .25]])}

VALID = _valid_structures()
VALID_CIFS = {k: s.to(fmt='cif') for k, s in VALID.items()}

@st.composite
def mutated_cif(draw):
    "A valid CIF with 1-3 edits: truncated, a line dropped or duplicated, a number or an element replaced, text inserted."
    text = draw(st.sampled_from(sorted(VALID_CIFS.values())))
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split('\n')
        op = draw(st.sampled_from(['truncate', 'drop', 'dup', 'number', 'element', 'insert']))
        if op == 'truncate': text = text[:draw(st.integers(0, len(text)))]
        elif op in ('drop', 'dup') and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = '\n'.join(lines[:i] + ([lines[i]] * 2 if op == 'dup' else []) + lines[i + 1:])
        elif op == 'number':
            nums = list(re.finditer(r'-?\d+\.\d+', text))
            if nums:
                m = draw(st.sampled_from(nums))
                text = text[:m.start()] + draw(st.sampled_from(['nan', 'inf', '-1', '0', '1e400', 'abc', '', '0.5(3)'])) + text[m.end():]
        elif op == 'element':
            text = re.sub(r'(?m)^(\s+)(Sr|Ti|Na|Cl|Cs|Si)(\s)', lambda m: m.group(1) + draw(st.sampled_from(['X', 'Xx', 'D', 'Q', '*', 'Fe'])) + m.group(3), text, count=1)
        else:
            i = draw(st.integers(0, len(lines)))
            text = '\n'.join(lines[:i] + [draw(st.text(max_size=30))] + lines[i:])
    return text

garbage_cif = st.one_of(mutated_cif(), st.text(max_size=60), st.sampled_from(['', 'data_', 'data_x\nloop_\n']))

@FUZZ
@given(garbage=st.lists(garbage_cif, min_size=1, max_size=6))
def test_parse_cifs_never_raises_and_keeps_valid_results(garbage):
    from molbench.data.crystals import parse_cifs
    valid = sorted(VALID_CIFS.values())
    res = parse_cifs(valid + garbage, num_workers=1, progress=False)
    assert len(res) == len(valid) + len(garbage)
    for r in res: assert (isinstance(r, str) and r) or (isinstance(r, tuple) and len(r) == 5)
    alone = parse_cifs(valid, num_workers=1, progress=False)
    for a, b in zip(alone, res):
        for x, y in zip(a, b): np.testing.assert_array_equal(x, y)

DUMMY_CIF = VALID_CIFS['cscl'].replace('  Cs  Cs0', '  X  X0')

@FUZZ
@given(garbage=st.lists(garbage_cif, max_size=4))
@example(garbage=[DUMMY_CIF])
def test_parse_cifs_atomic_numbers_are_elements(garbage):
    from molbench.data.crystals import parse_cifs
    for r in parse_cifs(garbage, num_workers=1, progress=False):
        if isinstance(r, tuple): assert ((r[0] >= 1) & (r[0] <= 118)).all(), r[0]

def _check_report(ds, n_total: int):
    from molbench.data.files import PROBLEM_KINDS
    rep = ds.report
    assert rep.n_rows == n_total == rep.n_kept + len(rep.problems) and rep.n_kept == len(ds)
    for p in rep.problems: assert p.kind in PROBLEM_KINDS and p.reason and p.file, p

@pytest.fixture(scope='module')
def valid_crystals():
    "The valid structures through load_structures alone (the expected result for every valid row)."
    from molbench.data.files import load_structures
    df = pd.DataFrame({'material_id': list(VALID_CIFS), 'cif': list(VALID_CIFS.values()), 'e': range(len(VALID_CIFS))})
    ds = load_structures(scratch('valid.csv', df.to_csv(index=False)), cache=False, num_workers=1)
    return {ds.material_ids[i]: ds[i] for i in range(len(ds))}

@FUZZ
@given(garbage=st.lists(st.one_of(garbage_cif, st.none()), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_load_structures_csv_counts_bad_rows_and_keeps_valid_ones(valid_crystals, garbage, seed):
    from molbench.data.files import load_structures
    df = pd.DataFrame({'material_id': list(VALID_CIFS) + [f'bad{i}' for i in range(len(garbage))],
                       'cif': list(VALID_CIFS.values()) + garbage, 'e': np.arange(len(VALID_CIFS) + len(garbage), dtype=float)})
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    ds = quiet(load_structures, scratch('mine.csv', df.to_csv()), cache=False, num_workers=1)
    _check_report(ds, len(df))
    ids = ds.material_ids
    assert set(VALID_CIFS) <= set(ids)                                          # every valid row kept ...
    for i, m in enumerate(ids):
        c = ds[i]
        assert ((c.z >= 1) & (c.z <= 118)).all() and np.isfinite(c.frac).all() and np.isfinite(c.lattice).all()
        if m in valid_crystals:                                                  # ... exactly as parsed alone
            np.testing.assert_array_equal(c.frac, valid_crystals[m].frac)
            np.testing.assert_array_equal(c.lattice, valid_crystals[m].lattice)
            assert c.properties['e'] == df.e[df.material_id == m].item()
    rows = {p.record: p for p in ds.report.problems}
    for r, p in rows.items(): assert p.id == df.material_id[r] and not df.material_id[r] in VALID_CIFS

@FUZZ
@given(garbage=st.lists(st.one_of(garbage_cif, st.binary(max_size=20)), min_size=1, max_size=4))
def test_load_structures_cif_folder_counts_bad_files(valid_crystals, garbage):
    from molbench.data.files import load_structures
    d = Path(tempfile.mkdtemp())
    for k, text in VALID_CIFS.items(): (d / f'{k}.cif').write_text(text)
    for i, g in enumerate(garbage): ((d / f'zz{i}.cif').write_bytes if isinstance(g, bytes) else (d / f'zz{i}.cif').write_text)(g)
    ds = quiet(load_structures, d, cache=False, num_workers=1)
    assert ds.report.n_rows >= len(VALID_CIFS) and ds.report.n_rows == ds.report.n_kept + len(ds.report.problems)
    for i, m in enumerate(ds.material_ids):
        if m in valid_crystals: np.testing.assert_array_equal(ds[i].frac, valid_crystals[m].frac)
    assert set(VALID_CIFS) <= set(ds.material_ids)
    assert all(p.file.startswith('zz') for p in ds.report.problems)

@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200)),
       name=st.sampled_from(['x.csv', 'x.cif', 'x.xyz', 'x.sdf', 'POSCAR', 'x.extxyz']))
def test_whole_file_garbage_raises_only_the_named_error(data, name):
    from molbench.data.files import NoUsableDataError, load_file
    p = scratch(name, data)
    try: ds = quiet(load_file, p, cache=False)
    except NoUsableDataError as e: assert name in str(e) and 'no usable' in str(e)
    else: assert len(ds) == ds.report.n_kept > 0                                # random text that happens to be data

# ---------------------------------------------------------------------------------------------------------------------
# XYZ and SDF: load_molecules
# ---------------------------------------------------------------------------------------------------------------------
MOLS = {'water': (['O', 'H', 'H'], [[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]]),
        'ammonia': (['N', 'H', 'H', 'H'], [[0, 0, 0], [0, 0.9377, 0.3816], [0.8121, -0.4689, 0.3816], [-0.8121, -0.4689, 0.3816]]),
        'methane': (['C', 'H', 'H', 'H', 'H'], [[0, 0, 0], [0.629, 0.629, 0.629], [-0.629, -0.629, 0.629],
                                                [-0.629, 0.629, -0.629], [0.629, -0.629, -0.629]])}

def xyz_frame(symbols, pos, comment='') -> str:
    return f"{len(symbols)}\n{comment}\n" + ''.join(f"{s} {x:.6f} {y:.6f} {z:.6f}\n" for s, (x, y, z) in zip(symbols, pos))

one_line = st.text(alphabet=st.characters(exclude_characters='\n\r', exclude_categories=('Cs',)), max_size=30)

@st.composite
def bad_xyz_frame(draw):
    "An XYZ frame with exactly one defect that makes it unusable as a molecule."
    sym, pos = MOLS[draw(st.sampled_from(sorted(MOLS)))]
    sym, lines = list(sym), xyz_frame(sym, pos, 'garbage').split('\n')[2:-1]
    k = draw(st.integers(0, len(sym) - 1))
    defect = draw(st.sampled_from(['count', 'element', 'nonfinite', 'token', 'column', 'periodic', 'number']))
    count, comment = len(sym), draw(one_line.filter(lambda s: not re.fullmatch(r'\s*\d+\s*', s) and 'lattice' not in s.lower()
                                                                and 'properties' not in s.lower() and 'pbc' not in s.lower()))
    tok = lines[k].split()
    if defect == 'count': count = draw(st.integers(0, len(sym) + 3).filter(lambda c: c != len(sym)))
    elif defect == 'element': tok[0] = draw(st.sampled_from(['Xx', 'Q', 'D', 'Zz', 'X']))
    elif defect == 'nonfinite': tok[draw(st.integers(1, 3))] = draw(st.sampled_from(['nan', 'inf', '-inf', 'NaN']))
    elif defect == 'token': tok[draw(st.integers(1, 3))] = draw(st.sampled_from(['abc', '1.2.3', '--1', '0x1g']))
    elif defect == 'column': del tok[draw(st.integers(1, 3))]
    elif defect == 'number': tok[0] = str(draw(st.sampled_from([0, 119, 200, 999])))
    else: comment = 'Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"'
    lines[k] = ' '.join(tok)
    return f"{count}\n{comment}\n" + '\n'.join(lines) + '\n'

@FUZZ
@given(items=st.lists(st.one_of(st.sampled_from(sorted(MOLS)), bad_xyz_frame()), min_size=1, max_size=10),
       lead=st.sampled_from(['', '\n', 'junk before any frame\nmore junk\n']))
def test_load_molecules_xyz_counts_each_bad_frame_and_keeps_good_ones(items, lead):
    from molbench.data.files import NoUsableDataError, load_molecules
    good = [i for i in items if i in MOLS]
    text = lead + ''.join(xyz_frame(*MOLS[i], comment=i) if i in MOLS else i for i in items)
    n_bad = len(items) - len(good) + (1 if lead.strip() else 0)
    p = scratch('mine.xyz', text)
    if not good:
        with pytest.raises(NoUsableDataError, match='mine.xyz: no usable molecules'): quiet(load_molecules, p, cache=False)
        return
    ds = quiet(load_molecules, p, cache=False)
    _check_report(ds, len(good) + n_bad)
    assert len(ds.report.problems) == n_bad                                     # one problem per bad frame
    assert len(ds) == len(good)
    for j, name in enumerate(good):                                             # every good frame, in order, intact
        sym, pos = MOLS[name]
        assert [Chem.GetPeriodicTable().GetElementSymbol(int(a)) for a in ds[j].z] == sym
        np.testing.assert_allclose(ds[j].pos.numpy(), np.array(pos), atol=1e-6)

@FUZZ
@given(comments=st.lists(one_line, min_size=1, max_size=4))
def test_load_molecules_xyz_any_comment_line_never_raises(comments):
    from molbench.data.files import NoUsableDataError, load_molecules
    p = scratch('c.xyz', ''.join(xyz_frame(*MOLS['water'], comment=c) for c in comments))
    try: ds = quiet(load_molecules, p, cache=False)
    except NoUsableDataError: return                                            # e.g. every comment says Lattice=...
    _check_report(ds, len(comments))

def _mol(smiles, name, seed):
    m = Chem.AddHs(Chem.MolFromSmiles(smiles)); AllChem.EmbedMolecule(m, randomSeed=seed)
    m.SetProp('_Name', name); m.SetProp('energy', str(-len(smiles)))
    return m

SDF_MOLS = {'ethanol': _mol('CCO', 'ethanol', 1), 'ammonia': _mol('N', 'ammonia', 2), 'benzene': _mol('c1ccccc1', 'benzene', 3)}
SDF_BLOCKS = {k: Chem.MolToMolBlock(m) + f"> <energy>\n{m.GetProp('energy')}\n\n" for k, m in SDF_MOLS.items()}

@st.composite
def bad_sdf_record(draw):
    "An SDF record with one defect RDKit (or the loader) must reject: garbled counts, bad element, NaN, 2D, valence, blank."
    block = SDF_BLOCKS[draw(st.sampled_from(sorted(SDF_BLOCKS)))]
    lines = block.split('\n')
    defect = draw(st.sampled_from(['counts', 'element', 'nonfinite', 'flat', 'valence', 'blank']))
    if defect == 'counts': lines[3] = draw(st.sampled_from(['garbage', '  x  y  0', '', '999999 0']))
    elif defect == 'element':
        k = draw(st.integers(4, 4 + SDF_MOLS['ammonia'].GetNumAtoms() - 1))
        lines[k] = lines[k][:31] + draw(st.sampled_from(['Xx ', 'Zz ', '*  ', 'Q  ', 'R  '])) + lines[k][34:]
    elif defect == 'nonfinite':
        k = draw(st.integers(4, 4 + SDF_MOLS['ammonia'].GetNumAtoms() - 1))
        lines[k] = draw(st.sampled_from(['       nan', '       inf', '      -inf'])) + lines[k][10:]
    elif defect == 'flat': return Chem.MolToMolBlock(Chem.MolFromSmiles(draw(st.sampled_from(['CC', 'CO', 'c1ccccc1']))))
    elif defect == 'valence': return Chem.MolToMolBlock(Chem.AddHs(Chem.MolFromSmiles('C'))).replace('  1  2  1', '  1  2  3', 1)
    else: return draw(st.sampled_from(['', '\n', '   \n\n']))
    return '\n'.join(lines)

free_text = st.text(alphabet=st.characters(exclude_characters='$', exclude_categories=('Cs',)), min_size=1, max_size=80)

@FUZZ
@given(items=st.lists(st.one_of(st.tuples(st.just('good'), st.sampled_from(sorted(SDF_BLOCKS))),
                                st.tuples(st.just('bad'), bad_sdf_record()), st.tuples(st.just('free'), free_text)),
                      min_size=1, max_size=8))
def test_load_molecules_sdf_counts_bad_records_and_keeps_good_ones(items):
    from molbench.data.files import NoUsableDataError, load_molecules
    blocks = [SDF_BLOCKS[t] if kind == 'good' else t for kind, t in items]
    p = scratch('mine.sdf', ''.join((b if not b or b.endswith('\n') else b + '\n') + '$$$$\n' for b in blocks))
    good = [k for k, (kind, _) in enumerate(items) if kind == 'good']
    bad = [k for k, (kind, _) in enumerate(items) if kind == 'bad']
    try: ds = quiet(load_molecules, p, cache=False)
    except NoUsableDataError as e:
        assert not good and 'mine.sdf: no usable molecules' in str(e); return
    _check_report(ds, len(items))
    kept, skipped = ds.table.record.tolist(), {q.record for q in ds.report.problems}
    assert set(good) <= set(kept) and set(bad) <= skipped                     # good records kept, defects skipped,
    assert skipped | set(kept) == set(range(len(items)))                       # free text one or the other
    for j, r in enumerate(kept):
        if r in good:                                                           # good records intact, with their property
            ref = SDF_MOLS[items[r][1]]
            np.testing.assert_allclose(ds[j].pos.numpy(), ref.GetConformer().GetPositions(), atol=1e-4)
            assert ds[j].y['energy'] == float(ref.GetProp('energy'))

# ---------------------------------------------------------------------------------------------------------------------
# Evaluators
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def qm9_mols():
    from molbench.data.qm9 import load_qm9
    ds = load_qm9(nrows=8)
    return [(ds[i].z.numpy(), ds[i].pos.numpy().astype(np.float64)) for i in range(len(ds))]

MOL_EVAL = dict(fcd=False, rdkit_bonds=True)   # no FCD; no reference, so no fingerprints either

@pytest.fixture(scope='module')
def qm9_alone(qm9_mols):
    "The metrics of the valid molecules alone."
    from molbench.metrics.molecules import evaluate_molecules
    return evaluate_molecules(qm9_mols, **MOL_EVAL)

@st.composite
def bad_molecule(draw):
    "A (z, pos) pair with good shapes and one input problem the evaluator must count: NaN/inf, bad element, empty, overlap."
    n = draw(st.integers(1, 6))
    z = np.array(draw(st.lists(st.sampled_from([1, 6, 7, 8, 9]), min_size=n, max_size=n)), dtype=np.int64)
    pos = np.array(draw(st.lists(st.tuples(*[st.floats(-3, 3)] * 3), min_size=n, max_size=n)), dtype=np.float64).reshape(n, 3)
    pos += np.arange(n)[:, None] * 1.5                                          # atoms apart unless made to overlap
    defect = draw(st.sampled_from(['nan', 'inf', 'element', 'empty', 'overlap']))
    k = draw(st.integers(0, n - 1))
    if defect in ('nan', 'inf'): pos[k, draw(st.integers(0, 2))] = np.nan if defect == 'nan' else draw(st.sampled_from([np.inf, -np.inf]))
    elif defect == 'element': z[k] = draw(st.sampled_from([0, -1, 2, 16, 17, 92, 119, 300]))
    elif defect == 'empty': z, pos = z[:0], pos[:0]
    else:
        z, pos = np.append(z, 1), np.vstack([pos, pos[k] + draw(st.floats(0, 0.05))])
    return z, pos

@FUZZ
@given(garbage=st.lists(bad_molecule(), min_size=1, max_size=5), seed=st.integers(0, 2**16),
       as_batch=st.booleans())
def test_evaluate_molecules_counts_bad_input_and_keeps_valid_metrics(qm9_mols, qm9_alone, garbage, seed, as_batch):
    from molbench.core import Batch
    from molbench.metrics.molecules import evaluate_molecules
    kw, alone = MOL_EVAL, qm9_alone
    mixed = qm9_mols + garbage
    order = np.random.default_rng(seed).permutation(len(mixed))
    mixed = [mixed[i] for i in order]
    if as_batch:
        N = max(len(z) for z, _ in mixed)
        x, zz, m = np.zeros((len(mixed), N, 3)), np.zeros((len(mixed), N), np.int64), np.zeros((len(mixed), N), bool)
        for i, (z, p) in enumerate(mixed): x[i, :len(z)], zz[i, :len(z)], m[i, :len(z)] = p, z, True
        import torch
        mixed = Batch(x=torch.as_tensor(x), z=torch.as_tensor(zz), node_mask=torch.as_tensor(m))
    out = evaluate_molecules(mixed, **kw)
    n, nv = len(qm9_mols) + len(garbage), len(qm9_mols)
    atoms_all, atoms_valid = sum(len(z) for z, _ in qm9_mols + garbage), sum(len(z) for z, _ in qm9_mols)
    assert out['n_samples'] == n and out['n_invalid_input'] == len(garbage) == sum(out['invalid_reasons'].values())
    assert round(out['mol_stability'] * n) == round(alone['mol_stability'] * nv)        # stable molecules
    assert round(out['atom_stability'] * atoms_all) == round(alone['atom_stability'] * atoms_valid)  # stable atoms
    assert round(out['validity'] * n) == round(alone['validity'] * nv)
    assert round(out['validity_rdkit_bonds'] * n) == round(alone['validity_rdkit_bonds'] * nv)
    assert out['uniqueness'] == alone['uniqueness']

@st.composite
def any_molecule(draw):
    "Well-formed input with arbitrary content: random elements (some outside the EDM tables) at random, even huge, positions."
    n = draw(st.integers(1, 10))
    z = draw(st.lists(st.sampled_from([1, 1, 6, 7, 8, 9, 16]), min_size=n, max_size=n))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e6]))
    pos = draw(st.lists(st.tuples(*[st.floats(-2, 2, allow_subnormal=False)] * 3), min_size=n, max_size=n))
    return np.array(z, dtype=np.int64), np.array(pos, dtype=np.float64).reshape(n, 3) * scale

def _counts(out):
    "Stable molecules, stable atoms, valid molecules and bad inputs of an evaluate_molecules result, as counts."
    n = out['n_samples']
    return np.array([out['mol_stability'] * n, out['validity'] * n, out['n_invalid_input']])

@FUZZ
@given(extra=st.lists(any_molecule(), min_size=1, max_size=4))
def test_evaluate_molecules_counts_add_up_over_arbitrary_molecules(qm9_mols, qm9_alone, extra):
    from molbench.metrics.molecules import evaluate_molecules
    kw = dict(fcd=False, rdkit_bonds=False)
    both, alone = quiet(evaluate_molecules, qm9_mols + extra, **kw), quiet(evaluate_molecules, extra, **kw)
    assert both['n_samples'] == len(qm9_mols) + len(extra)
    np.testing.assert_allclose(_counts(both), _counts(qm9_alone) + _counts(alone), atol=1e-6)

malformed_molecule = st.sampled_from([
    (np.array([6, 1]), np.zeros((3, 3))),            # 2 atoms, 3 positions
    (np.array([6, 1, 1]), np.zeros((3, 2))),         # 2-D positions
    (np.array([6]), np.zeros(3)),                    # flat position vector
    (np.array([[6, 1]]), np.zeros((2, 3))),          # 2-D z
    (np.array(['C', 'H']), np.zeros((2, 3))),        # symbols instead of atomic numbers
    (np.array([6, 1]), np.array([['a', 'b', 'c'], ['0', '0', '0']])),  # text coordinates
    None,                                            # no molecule at all
])

@FUZZ
@given(garbage=st.lists(malformed_molecule, min_size=1, max_size=3))
@example(garbage=[(np.array([6, 1]), np.zeros((3, 3)))])
def test_evaluate_molecules_counts_malformed_shapes(qm9_mols, qm9_alone, garbage):
    from molbench.metrics.molecules import evaluate_molecules
    out = quiet(evaluate_molecules, qm9_mols + garbage, fcd=False, rdkit_bonds=False)
    assert out['n_samples'] == len(qm9_mols) + len(garbage) and out['n_invalid_input'] == len(garbage)
    assert out['invalid_reasons'].get('malformed_sample') == len(garbage)
    np.testing.assert_allclose(_counts(out)[:2], _counts(qm9_alone)[:2], atol=1e-6)   # stable and valid molecules unchanged

VALID_TRIPLES = [(np.array(s.atomic_numbers), s.frac_coords, s.lattice.matrix) for s in VALID.values()]

@st.composite
def bad_crystal(draw):
    "A (z, frac, lattice) triple with good shapes and one defect that makes it invalid: NaN, bad element, empty, overlap, no volume."
    z, f, L = (a.copy() for a in VALID_TRIPLES[draw(st.integers(0, len(VALID_TRIPLES) - 1))])
    f, L = f.astype(np.float64), L.astype(np.float64)
    defect = draw(st.sampled_from(['nan_frac', 'nan_lattice', 'element', 'empty', 'overlap', 'tiny']))
    k = draw(st.integers(0, len(z) - 1))
    if defect == 'nan_frac': f[k, draw(st.integers(0, 2))] = draw(st.sampled_from([np.nan, np.inf]))
    elif defect == 'nan_lattice': L[draw(st.integers(0, 2)), draw(st.integers(0, 2))] = np.nan
    elif defect == 'element': z[k] = draw(st.sampled_from([0, -3, 104, 119, 500]))
    elif defect == 'empty': z, f = z[:0], f[:0]
    elif defect == 'overlap': z, f = np.append(z, z[k]), np.vstack([f, f[k] + draw(st.floats(0, 1e-3))])
    else: L = L * draw(st.sampled_from([1e-3, 1e-6]))      # a cell of (almost) no volume, still a lattice
    return z, f, L

@st.composite
def zero_volume_crystal(draw):
    "A valid crystal whose lattice has lost its volume: a zero lattice vector, or all zeros."
    z, f, L = (a.copy() for a in VALID_TRIPLES[draw(st.integers(0, len(VALID_TRIPLES) - 1))])
    L = L.astype(np.float64)
    if draw(st.booleans()): L[draw(st.integers(0, 2))] = 0.0
    else: L[:] = 0.0
    return z, f.astype(np.float64), L

CRYSTAL_EVAL = dict(fingerprints=False, dataset='mp20')   # no CrystalNN fingerprints (the slow part)

@pytest.fixture(scope='module')
def crystals_alone():
    "The metrics of the valid crystals alone."
    from molbench.metrics.crystals import evaluate_crystals
    return quiet(evaluate_crystals, VALID_TRIPLES, **CRYSTAL_EVAL)

def _check_crystal_metrics(out, alone, n_garbage):
    n, nv = len(VALID_TRIPLES) + n_garbage, len(VALID_TRIPLES)
    assert out['n_samples'] == n and sum(out['invalid_reasons'].values()) == n_garbage
    assert round(out['struct_validity'] * n) == round(alone['struct_validity'] * nv) == nv
    assert round(out['validity'] * n) == round(alone['validity'] * nv)

@FUZZ
@given(garbage=st.lists(bad_crystal(), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_evaluate_crystals_counts_bad_input_and_keeps_valid_metrics(crystals_alone, garbage, seed):
    from molbench.metrics.crystals import evaluate_crystals
    mixed = VALID_TRIPLES + garbage
    mixed = [mixed[i] for i in np.random.default_rng(seed).permutation(len(mixed))]
    _check_crystal_metrics(quiet(evaluate_crystals, mixed, **CRYSTAL_EVAL), crystals_alone, len(garbage))

@FUZZ
@given(garbage=st.lists(zero_volume_crystal(), min_size=1, max_size=3))
@example(garbage=[(np.array([11]), np.zeros((1, 3)), np.diag([0.0, 5.0, 5.0]))])
def test_evaluate_crystals_counts_zero_volume_cells(crystals_alone, garbage):
    from molbench.metrics.crystals import evaluate_crystals
    _check_crystal_metrics(quiet(evaluate_crystals, VALID_TRIPLES + garbage, **CRYSTAL_EVAL), crystals_alone, len(garbage))

@st.composite
def any_crystal(draw):
    "Well-formed input with arbitrary content: random elements in a random (non-singular) cell at random positions."
    n = draw(st.integers(1, 6))
    z = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    L = np.array(draw(st.lists(st.floats(-12, 12, allow_subnormal=False), min_size=9, max_size=9))).reshape(3, 3)
    L = L + np.eye(3) * draw(st.sampled_from([0.0, 4.0, 40.0]))
    assume(abs(np.linalg.det(L)) > 1e-2)
    f = np.array(draw(st.lists(st.floats(-1, 2, allow_subnormal=False), min_size=3 * n, max_size=3 * n))).reshape(n, 3)
    return np.array(z, dtype=np.int64), f, L

def _crystal_counts(out):
    n = out['n_samples']
    return np.array([out['struct_validity'] * n, out['validity'] * n, sum(out['invalid_reasons'].values())])

@FUZZ
@given(extra=st.lists(any_crystal(), min_size=1, max_size=4))
def test_evaluate_crystals_counts_add_up_over_arbitrary_crystals(crystals_alone, extra):
    from molbench.metrics.crystals import evaluate_crystals
    both, alone = quiet(evaluate_crystals, VALID_TRIPLES + extra, **CRYSTAL_EVAL), quiet(evaluate_crystals, extra, **CRYSTAL_EVAL)
    assert both['n_samples'] == len(VALID_TRIPLES) + len(extra)
    np.testing.assert_allclose(_crystal_counts(both), _crystal_counts(crystals_alone) + _crystal_counts(alone), atol=1e-6)

malformed_crystal = st.sampled_from([
    (np.array([11, 17]), np.zeros((3, 3)), np.eye(3) * 5),   # 2 atoms, 3 coordinates
    (np.array([11]), np.zeros((1, 3)), np.eye(2) * 5),       # 2x2 lattice
    (np.array([11]), np.zeros((1, 2)), np.eye(3) * 5),       # 2-D coordinates
    (np.array([11]), np.zeros((1, 3)), np.zeros(6)),          # six lattice parameters instead of vectors
    None,                                                     # no structure at all
])

@FUZZ
@given(garbage=st.lists(malformed_crystal, min_size=1, max_size=3))
@example(garbage=[(np.array([11, 17]), np.zeros((3, 3)), np.eye(3) * 5)])
def test_evaluate_crystals_counts_malformed_shapes(garbage):
    from molbench.metrics.crystals import evaluate_crystals
    out = quiet(evaluate_crystals, VALID_TRIPLES + garbage, fingerprints=False)
    assert out['n_samples'] == len(VALID_TRIPLES) + len(garbage) and sum(out['invalid_reasons'].values()) == len(garbage)
