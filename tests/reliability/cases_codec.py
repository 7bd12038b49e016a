"""`thinwire compress | decompress | inspect`: flags, vector files and damaged or forged messages."""
import os
import struct

from common import MESSAGE_CODECS, Case, absent, write, write_npy


def compress(*extra, codec="identity", inp="{F}/v.npy", out="{W}/m.twm"):
    return ["compress", "--codec", codec, "--in", inp, "--out", out] + list(extra)


def copy_message(name, mutate=None, forge=False):
    """Setup: the fixture message `name`.twm as {W}/m.twm, changed by `mutate(bytearray)`."""
    def setup(env, work):
        with open(env.path(name + ".twm"), "rb") as f:
            data = bytearray(f.read())
        if mutate is not None:
            data = mutate(data)
        path = os.path.join(work, "m.twm")
        write(path, bytes(data), "wb")
        if forge:
            env.forge(path)
    return setup


def set_u64(offset, value):
    def mutate(data):
        data[offset:offset + 8] = struct.pack("<Q", value)
        return data
    return mutate


def identity_with(values):
    """An identity message of `values` (any floats, NaN included), checksum made valid."""
    def setup(env, work):
        with open(env.path("identity.twm"), "rb") as f:
            data = bytearray(f.read())
        payload = struct.pack("<%df" % len(values), *values)
        data[8:16] = struct.pack("<Q", len(values))
        data[16:24] = struct.pack("<Q", len(payload))
        data = data[:32] + payload
        path = os.path.join(work, "m.twm")
        write(path, bytes(data), "wb")
        env.forge(path)
    return setup


def cases(env):
    out = []
    for tag, value in [("neg", "-1"), ("2^64", "18446744073709551616"), ("word", "abc"),
                       ("empty", ""), ("float", "1.5"), ("huge", "9" * 300)]:
        for flag in ["--seed", "--iteration", "--rank"]:
            out.append(Case("codec", "compress%s-%s" % (flag, tag), compress(flag, value), 2,
                            r"%s: must be an integer in \[0, 2\^(64|32)-1\]" % flag,
                            check=absent("m.twm")))
    out.append(Case("codec", "compress-seed-max-ok", compress("--seed", str(2 ** 64 - 1)), 0))
    out.append(Case("codec", "compress-exponent-plus-ok", compress(codec="threshold:tau=1e+0"), 0))
    out.append(Case("codec", "compress-rank-2^32", compress("--rank", str(2 ** 32)), 2,
                    r"--rank"))
    bad_codecs = ["nope", "qsgd:s=0", "qsgd:s=-1", "qsgd:s=abc", "qsgd:s=99999999999",
                  "qsgd:bucket=-1", "qsgd:coding=nope", "qsgd:s=4,s=8", "topk:k=0", "topk:k=1.5",
                  "topk:k=nan", "randk:k=-1", "threshold:tau=-1", "threshold:tau=inf",
                  "wangni:density=0", "wangni:density=2", "terngrad:clip=-1", "sign:x=1",
                  "identity:x=1", "qsgd:s=16+ef+ef", "+ef", "", ":", "qsgd:x", "qsgd:=3",
                  "qsgd:s", "q" * 100000, "qsgd+ef:s=4", "topk:k=0.5+ef+ef"]
    for i, codec in enumerate(bad_codecs):
        out.append(Case("codec", "compress-codec-%d" % i, compress(codec=codec), 2, r"--codec",
                        check=absent("m.twm")))
    for name, codec in MESSAGE_CODECS:
        out.append(Case("codec", "compress-ok-" + name, compress(codec=codec), 0))
        out.append(Case("codec", "roundtrip-" + name, ["decompress", "--in",
                                                       "{F}/%s.twm" % name, "--out", "{W}/y.npy"],
                        0))
        out.append(Case("codec", "inspect-" + name, ["inspect", "{F}/%s.twm" % name], 0))
        for label, mutate in [("truncated", lambda d: d[:len(d) - 1]),
                              ("extended", lambda d: d + b"\x00"),
                              ("payload-flip", lambda d: flip(d, len(d) - 1)),
                              ("header-flip", lambda d: flip(d, 9)),
                              ("magic", lambda d: flip(d, 0)),
                              ("version", lambda d: flip(d, 2)),
                              ("codec-id", set_byte(3, 0xEE)),
                              ("flags", set_byte(4, 0x80))]:
            out.append(Case("codec", "decompress-%s-%s" % (name, label),
                            ["decompress", "--in", "{W}/m.twm", "--out", "{W}/y.npy"], 1,
                            r"m\.twm: ", setup=copy_message(name, mutate),
                            check=absent("y.npy")))
        # The header claims 2^40 elements (checksum valid): refused before any allocation.
        out.append(Case("codec", "decompress-2^40-" + name,
                        ["decompress", "--in", "{W}/m.twm", "--out", "{W}/y.npy"], 1,
                        r"m\.twm: .*(elements|payload)",
                        setup=copy_message(name, set_u64(8, 2 ** 40), forge=True),
                        check=absent("y.npy"), timeout=20))
        out.append(Case("codec", "inspect-2^40-" + name, ["inspect", "{W}/m.twm"], (0, 1), None,
                        setup=copy_message(name, set_u64(8, 2 ** 40), forge=True), timeout=20))
    for tag, values in [("nan", [1.0, float("nan")]), ("inf", [float("inf")]),
                        ("neginf", [0.0, 0.0, float("-inf")])]:
        out.append(Case("codec", "decompress-identity-" + tag,
                        ["decompress", "--in", "{W}/m.twm", "--out", "{W}/y.npy"], 1,
                        r"m\.twm: identity: payload element \d+ is not finite",
                        setup=identity_with(values), check=absent("y.npy")))
        out.append(Case("codec", "compress-" + tag, compress(inp="{W}/x.npy"), 1,
                        r"x\.npy: .*not finite",
                        setup=lambda env, work, v=values: write_npy(os.path.join(work, "x.npy"),
                                                                    v)))
    out.append(Case("codec", "decompress-identity-finite-forged",
                    ["decompress", "--in", "{W}/m.twm", "--out", "{W}/y.npy"], 0,
                    setup=identity_with([1.0, 2.0, -3.0])))
    out.append(Case("codec", "decompress-payload-2^62",
                    ["decompress", "--in", "{W}/m.twm", "--out", "{W}/y.npy"], 1, r"m\.twm",
                    setup=copy_message("identity", set_u64(16, 2 ** 62), forge=True)))
    for name, path, pattern in [("dev-zero", "/dev/zero", r"/dev/zero: not a thinwire message"),
                                ("dev-null", "/dev/null", r"/dev/null: .*shorter than"),
                                ("dir", "{W}", r"case-\w+: is a directory"),
                                ("missing", "{W}/nope.twm", r"nope\.twm: cannot open")]:
        out.append(Case("codec", "inspect-" + name, ["inspect", path], 1, pattern, timeout=10))
        out.append(Case("codec", "decompress-" + name,
                        ["decompress", "--in", path, "--out", "{W}/y.npy"], 1, pattern,
                        timeout=10))
    out.append(Case("codec", "inspect-random", ["inspect", "{W}/r.twm"], 1, r"r\.twm",
                    setup=lambda env, work: write(os.path.join(work, "r.twm"),
                                                  os.urandom(4096), "wb")))
    out.append(Case("codec", "decompress-out-txt", ["decompress", "--in", "{F}/identity.twm",
                                                    "--out", "{W}/y.txt"], 2, r"--out"))
    out.append(Case("codec", "decompress-out-dir", ["decompress", "--in", "{F}/identity.twm",
                                                    "--out", "{W}/d.npy"], 1, r"d\.npy",
                    setup=lambda env, work: os.makedirs(os.path.join(work, "d.npy"))))
    vector_files = [
        ("npy-bad-magic", "x.npy", b"NOTNUMPY" + b"\x00" * 40),
        ("npy-truncated", "x.npy", b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4'"),
        ("npy-f64", "x.npy", npy_header("<f8", 2) + b"\x00" * 16),
        ("npy-2d", "x.npy", npy_header("<f4", "2, 2") + b"\x00" * 16),
        ("npy-short-data", "x.npy", npy_header("<f4", 100) + b"\x00" * 16),
        ("npy-huge-shape", "x.npy", npy_header("<f4", 2 ** 60) + b"\x00" * 16),
        ("npy-empty", "x.npy", b""),
        ("f32-odd", "x.f32", b"\x00" * 7),
    ]
    for name, file_name, data in vector_files:
        out.append(Case("codec", "compress-" + name, compress(inp="{W}/" + file_name), 1,
                        file_name.replace(".", r"\."),
                        setup=lambda env, work, f=file_name, d=data: write(
                            os.path.join(work, f), d, "wb"), check=absent("m.twm")))
    out.append(Case("codec", "compress-in-dev-zero-link", compress(inp="{W}/z.npy"), 1,
                    r"z\.npy: more than 1 GiB read from a device or pipe", timeout=60,
                    setup=lambda env, work: os.symlink("/dev/zero", os.path.join(work, "z.npy"))))
    out.append(Case("codec", "compress-in-txt", compress(inp="{W}/x.txt"), 2, r"--in"))
    out.append(Case("codec", "compress-in-missing", compress(inp="{W}/x.npy"), 1, r"x\.npy"))
    out.append(Case("codec", "compress-in-dev-zero-f32", compress(inp="/dev/zero.f32"), 1,
                    r"zero"))
    return out


def npy_header(descr, shape):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s,), }" % (descr, shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


def flip(data, index):
    data[index] ^= 0x5A
    return data


def set_byte(index, value):
    def mutate(data):
        data[index] = value
        return data
    return mutate


