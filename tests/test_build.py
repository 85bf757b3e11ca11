import torch

import embedfast


def test_ops_registered():
    # every schema in csrc/ops.cpp is reachable through torch.ops.embedfast
    assert hasattr(torch.ops.embedfast, "load_vectors")
    assert embedfast.__version__
