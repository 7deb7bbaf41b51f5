#!/usr/bin/env python3
"""t-SNE speed and quality: cnnvis against scikit-learn on Fashion-MNIST, in one run.

Both tools embed the same float32 matrix (the first N Fashion-MNIST items, pixels / 255, reduced to 50
principal components by scikit-learn's PCA) with the same perplexity (30), iterations (1000), early
exaggeration (12 for 250 iterations), learning rate (N / 12 in bhtsne units, sklearn's 'auto') and PCA
initialisation, and the same number of threads. Printed per tool: wall time (cnnvis: the whole command,
file reading and plots included, plus the engine's own time), 10-NN preservation (share of each point's
10 nearest neighbours in the 50-D input that are among its 10 nearest in 2-D) and label kNN accuracy
(leave-one-out majority vote of the 10 nearest 2-D neighbours). Each tool runs once per seed (default
0, 1, 2: the seed moves scikit-learn's randomized PCA initialisation slightly, and its quality scores
by about 0.001; cnnvis's PCA of a 50-D input is exact, so its runs repeat), and the means are compared. Run with Debian's /usr/bin/python3.
"""
import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(n):
    images = [read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz"), read_idx(f"{DATA}/train-images-idx3-ubyte.gz")]
    labels = [read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz"), read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")]
    x = np.concatenate(images)[:n].reshape(n, -1).astype(np.float32) / 255.0
    y = np.concatenate(labels)[:n].astype(np.int64)
    return x, y


def neighbours(points, k, queries):
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=k + 1).fit(points)
    idx = nn.kneighbors(points[queries], return_distance=False)
    out = []
    for q, row in zip(queries, idx):
        row = [j for j in row if j != q][:k]
        out.append(row)
    return np.array(out)


def quality(x50, y, emb, queries, high_nn):
    low = neighbours(emb.astype(np.float64), 10, queries)
    preservation = np.mean([len(set(a) & set(b)) / 10.0 for a, b in zip(high_nn, low)])
    votes = y[low]
    predicted = np.array([np.bincount(v, minlength=10).argmax() for v in votes])
    accuracy = np.mean(predicted == y[queries])
    return preservation, accuracy


def run_sklearn(x50, threads, seed):
    import sklearn
    from sklearn.manifold import TSNE
    kwargs = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0, init="pca", random_state=seed,
                  n_jobs=threads, learning_rate="auto")
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    emb = TSNE(**kwargs).fit_transform(x50)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, emb, sklearn.__version__


def run_cnnvis(binary, work, threads, seed):
    out = os.path.join(work, "cnnvis_out")
    cmd = [binary, "--threads", str(threads), "-q", "tsne", "--features", os.path.join(work, "x50.npy"), "--labels",
           os.path.join(work, "labels.npy"), "--seed", str(seed), "--out", out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(os.path.join(out, "tsne.json")) as f:
        meta = json.load(f)["tsne"]
    engine = sum(meta["seconds"].values())
    emb = np.load(os.path.join(out, "tsne_coordinates.npy"))
    return wall, cpu, engine, emb, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cnnvis", default="build/cnnvis")
    ap.add_argument("--n", type=int, default=10000, help="first N items of test+train (70000 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", default="0,1,2",
                    help="comma-separated seeds; each tool runs once per seed and the means are compared")
    ap.add_argument("--skip-sklearn", action="store_true", help="only cnnvis (for the 70,000-point run)")
    ap.add_argument("--eval-queries", type=int, default=10000, help="points whose neighbourhoods are scored")
    ap.add_argument("--work", default="build/bench_tsne")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    x, y = load(args.n)
    from sklearn.decomposition import PCA
    x50 = PCA(n_components=50, random_state=0).fit_transform(x).astype(np.float32)
    np.save(os.path.join(args.work, "x50.npy"), x50)
    np.save(os.path.join(args.work, "labels.npy"), y)
    rng = np.random.default_rng(0)
    queries = np.sort(rng.choice(args.n, size=min(args.n, args.eval_queries), replace=False))
    high_nn = neighbours(x50.astype(np.float64), 10, queries)

    load_avg = os.getloadavg()
    print(f"Fashion-MNIST, {args.n} items, PCA 50; {args.threads} threads each; load average before: "
          f"{load_avg[0]:.1f} {load_avg[1]:.1f} {load_avg[2]:.1f} on {os.cpu_count()} cores")
    print(f"scored on {len(queries)} points; 10-NN label accuracy in the 50-D input: "
          f"{quality(x50, y, x50, queries, high_nn)[1]:.3f}")
    env_threads = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = env_threads
    seeds = [int(v) for v in args.seeds.split(",")]
    runs = {}  # tool -> list of (wall, cpu, preservation, accuracy)
    print(f"{'tool':<16} {'seed':>4} {'wall (s)':>9} {'CPU (s)':>9} {'10-NN pres.':>12} {'kNN acc.':>9}  notes")
    for seed in seeds:
        wall, cpu, engine, emb, meta = run_cnnvis(args.cnnvis, args.work, args.threads, seed)
        p, a = quality(x50, y, emb, queries, high_nn)
        runs.setdefault("cnnvis", []).append((wall, cpu, p, a))
        print(f"{'cnnvis':<16} {seed:4d} {wall:9.2f} {cpu:9.2f} {p:12.4f} {a:9.4f}  "
              f"engine {engine:.2f} s, KL {meta['kl']:.3f}, {meta['method']}", flush=True)
        if not args.skip_sklearn:
            wall_s, cpu_s, emb_s, version = run_sklearn(x50, args.threads, seed)
            p_s, a_s = quality(x50, y, emb_s, queries, high_nn)
            name = f"sklearn {version}"
            runs.setdefault(name, []).append((wall_s, cpu_s, p_s, a_s))
            print(f"{name:<16} {seed:4d} {wall_s:9.2f} {cpu_s:9.2f} {p_s:12.4f} {a_s:9.4f}  Barnes-Hut, theta 0.5",
                  flush=True)
    means = {name: np.mean(np.array(rows), axis=0) for name, rows in runs.items()}
    for name, (t, c, p, a) in means.items():
        print(f"{name:<16} {'mean':>4} {t:9.2f} {c:9.2f} {p:12.4f} {a:9.4f}")
    if len(means) == 2:
        (t0, c0, p0, a0), (t1, c1, p1, a1) = means.values()
        print(f"ratio cnnvis / sklearn (means over {len(seeds)} seeds): wall {t0 / t1:.3f}, CPU {c0 / c1:.3f}; "
              f"10-NN preservation {p0 - p1:+.4f}, kNN accuracy {a0 - a1:+.4f}")
    load_avg = os.getloadavg()
    print(f"load average after: {load_avg[0]:.1f} {load_avg[1]:.1f} {load_avg[2]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
