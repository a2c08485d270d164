#!/bin/bash
# Decorated copies of 5 corpus files hepml used to refuse (ATLAS xAOD, Delphes, a split event
# class, a ROOT 4 (TTree v5) tree, a recovered tree), checked as the test suite checks its own:
# every original basket byte for byte and every branch equal in uproot (root_check.py
# same-baskets), ROOT reads every original branch as in the input (root-reads), and the score
# equals onnxruntime (check_inject.py). Run explicitly, like check_corpus.py:
#   HEPML=target/release/hepml HEPML_PYTHON=.venv/bin/python bash scripts/check_corpus_inject.sh
set -u
H=${HEPML:-target/release/hepml}; C=${HEPML_CORPUS:-$HOME/.cache/hepml/skhep-testdata}; P=${HEPML_PYTHON:-.venv/bin/python}; S=scripts; M=$(mktemp -d); trap "rm -rf $M" EXIT
$P $S/make_test_models.py $M > /dev/null
run() { f=$1; t=$2; shift 2; feats=$(printf '"%s",' "$@"); feats="[${feats%,}]"
  printf 'inputs:\n  x: %s\noutputs:\n  probabilities: {branch: score, column: 1}\n' "$feats" > $M/five.yaml
  printf '{"inputs": {"x": %s}, "outputs": [["probabilities", 1, "score"]]}' "$feats" > $M/five.json
  rm -f $M/five_out.root
  echo "== $f $t"
  $H inject $C/$f --tree $t --model $M/mlp.onnx --features $M/five.yaml -o $M/five_out.root --quiet || { echo INJECT FAILED; return; }
  $P $S/root_check.py same-baskets $C/$f $M/five_out.root $t || echo SAME-BASKETS FAILED
  $P $S/root_check.py root-reads $C/$f $M/five_out.root $t || echo ROOT-READS FAILED
  $P $S/check_inject.py event $M/mlp.onnx $C/$f $t $M/five_out.root $t $M/five.json || echo SCORES FAILED
}
run uproot-issue-123a.root CollectionTree EventInfoAuxDyn.GenFiltHT EventInfoAuxDyn.GenFiltMET EventInfoAuxDyn.GenFiltPTZ EventInfoAuxDyn.mcChannelNumber EventInfoAuxDyn.RandomRunNumber
run uproot-issue513.root Delphes Event_size Track_size Jet_size GenJet_size EFlowTrack_size
run uproot-small-evnt-tree-fullsplit.root tree I16 I32 F32 F64 P3.Px
run uproot-issue-250.root B4 Eabs Egap Labs Lgap Eabs
run uproot-issue60.root nllscan nll mH mH__up mH__down status
