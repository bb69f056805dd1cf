"""PyTorch twin of skiplab's 50-layer ReLU MLP (width 64) with batch norm, with or without
identity residuals every two layers, on the built-in data (the first 9,000 training images
train, the last 1,000 validate), Adam lr 0.001, batch 64, 3 epochs. The README's
"Normalisation" table compares skiplab with it.

    python3 bench/deep_bn_twin.py plain|residual
"""
import pathlib
import gzip, struct, sys, time
import numpy as np, torch
torch.manual_seed(1); torch.set_num_threads(2)
def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    n = struct.unpack('>I', data[4:8])[0]
    if data[3] == 3:
        return np.frombuffer(data[16:], np.uint8).reshape(n, 784)
    return np.frombuffer(data[8:], np.uint8)
d = str(pathlib.Path(__file__).resolve().parent.parent / 'data/builtin') + '/'
x = idx(d + 'train-images-idx3-ubyte.gz').astype(np.float32) / 255
y = idx(d + 'train-labels-idx1-ubyte.gz').astype(np.int64)
x = (x - x.mean()) / x.std()
xv, yv, xt, yt = x[9000:], y[9000:], torch.tensor(x[:9000]), torch.tensor(y[:9000])
residual = sys.argv[1] == 'residual'
class Net(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.first = torch.nn.Linear(784, 64, bias=False)
        s.lins = torch.nn.ModuleList([torch.nn.Linear(64, 64, bias=False) for _ in range(49)])
        s.bns = torch.nn.ModuleList([torch.nn.BatchNorm1d(64) for _ in range(50)])
        s.out = torch.nn.Linear(64, 10)
    def forward(s, x):
        acts = [x]
        a = torch.relu(s.bns[0](s.first(x))); acts.append(a)
        for i, (lin, bn) in enumerate(zip(s.lins, s.bns[1:])):
            layer = i + 2
            z = bn(lin(a))
            if residual and layer % 2 == 0:
                z = z + acts[layer - 2] if layer - 2 > 0 else z
            a = torch.relu(z); acts.append(a)
        return s.out(a)
net = Net(); opt = torch.optim.Adam(net.parameters(), 1e-3)
for epoch in range(3):
    net.train(); perm = torch.randperm(9000)
    for s in range(0, 9000, 64):
        b = perm[s:s+64]
        loss = torch.nn.functional.cross_entropy(net(xt[b]), yt[b])
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(torch.tensor(xv)).argmax(1) == torch.tensor(yv)).float().mean().item()
    print(sys.argv[1], epoch + 1, f"val {acc:.3f}", flush=True)
