"""Bad input to the losses: the right exception, naming the argument; inputs untouched."""
import numpy as np
import pytest

import fastopt
from fastopt.regularization import penalty


def arrays():
    rng = np.random.default_rng(0)
    return {"W": rng.standard_normal((5, 3)), "X": rng.standard_normal((4, 5)), "y": np.array([0, 1, 2, 1]),
            "S": rng.standard_normal((4, 3))}


CASES = [
    ("label-too-big", lambda a: fastopt.softmax_loss(a["W"], a["X"], np.array([0, 1, 3, 1])), ValueError, r"y\[2\]"),
    ("label-negative", lambda a: fastopt.svm_loss(a["W"], a["X"], np.array([0, -1, 2, 1])), ValueError, r"y\[1\]"),
    ("label-float", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"].astype(float)), ValueError, "y"),
    ("label-bool", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"] > 0), ValueError, "y"),
    ("label-length", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"][:3]), ValueError, "y"),
    ("label-2d", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"].reshape(2, 2)), ValueError, "y"),
    ("X-W-mismatch", lambda a: fastopt.softmax_loss(a["W"], a["X"][:, :4], a["y"]), ValueError, "X"),
    ("N-zero", lambda a: fastopt.softmax_loss(a["W"], a["X"][:0], a["y"][:0]), ValueError, "N = 0"),
    ("C-zero", lambda a: fastopt.svm_loss(a["W"][:, :0], a["X"], a["y"]), ValueError, "C = 0"),
    ("X-int", lambda a: fastopt.softmax_loss(a["W"], a["X"].astype(np.int64), a["y"]), TypeError, "X"),
    ("X-list", lambda a: fastopt.softmax_loss(a["W"], a["X"].tolist(), a["y"]), TypeError, "X"),
    ("mixed-dtypes", lambda a: fastopt.softmax_loss(a["W"].astype(np.float32), a["X"], a["y"]), TypeError, "dtype"),
    ("W-1d", lambda a: fastopt.softmax_loss(a["W"][:, 0], a["X"], a["y"]), ValueError, "W"),
    ("reg-negative", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"], -0.1), ValueError, "reg"),
    ("reg-nan", lambda a: fastopt.svm_loss(a["W"], a["X"], a["y"], float("nan")), ValueError, "reg"),
    ("reg-str", lambda a: fastopt.svm_loss(a["W"], a["X"], a["y"], "0.1"), TypeError, "reg"),
    ("penalty-unknown", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"], penalty="l3"), ValueError, "penalty"),
    ("l1-ratio", lambda a: fastopt.softmax_loss(a["W"], a["X"], a["y"], penalty="elastic_net", l1_ratio=1.5),
     ValueError, "l1_ratio"),
    ("delta-negative", lambda a: fastopt.svm_loss(a["W"], a["X"], a["y"], delta=-1), ValueError, "delta"),
    ("scores-label", lambda a: fastopt.softmax_cross_entropy(a["S"], np.array([0, 1, 2, 3])), ValueError, r"y\[3\]"),
    ("scores-1d", lambda a: fastopt.multiclass_hinge(a["S"][0], a["y"]), ValueError, "scores"),
    ("scores-empty", lambda a: fastopt.softmax_cross_entropy(a["S"][:0], a["y"][:0]), ValueError, "N = 0"),
    ("penalty-kind", lambda a: penalty(a["W"], 0.1, "l0"), ValueError, "kind"),
    ("penalty-reg", lambda a: penalty(a["W"], -1.0), ValueError, "reg"),
    ("penalty-dtype", lambda a: penalty(a["W"].astype(np.int32), 0.1), TypeError, "W"),
]


@pytest.mark.parametrize("call, exc, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_loss_bad_input(call, exc, text):
    a = arrays()
    before = {k: v.copy() for k, v in a.items()}
    with pytest.raises(exc, match=text):
        call(a)
    for k in a:
        assert np.array_equal(a[k], before[k]), k
