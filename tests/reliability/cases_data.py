"""Data files given to `thinwire train`: LIBSVM (plain and gzip), IDX, and the data specs."""
import gzip
import os

from common import TRAIN, Case, write

GOOD = "+1 1:0.5 2:1.5\n-1 1:1 3:2\n" * 20


def libsvm_case(name, text, rc, pattern, spec="libsvm:path={W}/d.svm", extra=(), gz=False):
    def setup(env, work):
        path = os.path.join(work, "d.svm")
        data = text.encode() if isinstance(text, str) else text
        if gz:
            data = gzip.compress(data)
        write(path, data, "wb")
    args = ["train", "--data", spec, "--problem", "logistic", "--workers", "2", "--iterations",
            "2", "--batch-size", "8", "--progress", "none"] + list(extra)
    return Case("data", "libsvm-" + name, args, rc, pattern, setup=setup)


def cases(env):
    bad = [
        ("index-0", "+1 0:1\n", r"d\.svm:1: feature index 0"),
        ("index-decreasing", "+1 3:1 2:1\n", r"d\.svm:1: feature index 2 after 3"),
        ("index-2^31", GOOD + "+1 2147483648:1\n", r"d\.svm:41: feature index 2147483648"),
        ("index-2^31-1", GOOD + "+1 2147483647:1\n", r"d\.svm:41: feature index 2147483647 is "
                                                      r"above 16777216"),
        ("index-2^24+1", GOOD + "+1 16777217:1\n", r"d\.svm:41:.*features=N"),
        ("index-2^64", GOOD + "+1 18446744073709551616:1\n", r"d\.svm:41: bad feature index"),
        ("index-neg", "+1 -3:1\n", r"d\.svm:1: bad feature index"),
        ("index-word", "+1 a:1\n", r"d\.svm:1: bad feature index"),
        ("no-colon", "+1 3\n", r"d\.svm:1: expected INDEX:VALUE"),
        ("value-nan", "+1 1:nan\n", r"d\.svm:1: bad"),
        ("value-inf", "+1 1:inf\n", r"d\.svm:1: bad"),
        ("value-1e400", "+1 1:1e400\n", r"d\.svm:1: bad"),
        ("value-word", "+1 1:abc\n", r"d\.svm:1: bad"),
        ("label-word", "abc 1:1\n", r"d\.svm:1"),
        ("label-nan", "nan 1:1\n", r"d\.svm:1"),
        ("label-huge", "1e39 1:1\n", r"d\.svm:1"),
        ("huge-token", GOOD + "+1 1:" + "9" * 1000000 + "x\n", r"d\.svm:41: bad"),

        ("binary", bytes(range(256)) * 8, r"d\.svm"),
        ("index-duplicate", "+1 1:1 1:2\n", r"d\.svm:1: feature index 1 after 1"),
        ("features-too-small", GOOD, r"d\.svm:\d+: feature index 3 exceeds"),
    ]
    out = []
    for name, text, pattern in bad:
        spec = "libsvm:path={W}/d.svm" + (",features=2" if name == "features-too-small" else "")
        out.append(libsvm_case(name, text, 1, pattern, spec=spec))
    out.append(libsvm_case("ok", GOOD, 0, None))
    out.append(libsvm_case("one-class-ok", "+1 1:1\n" * 10, 0, None))
    out.append(libsvm_case("empty", "", 2, r"--data: the training set has no examples"))
    out.append(libsvm_case("blank-lines", "\n\n\n", 2, r"--data: the training set has no"))
    out.append(libsvm_case("natural-spelling", GOOD, 0, None, spec="libsvm:{W}/d.svm"))
    out.append(libsvm_case("natural-spelling-params", GOOD, 0, None,
                           spec="libsvm:{W}/d.svm,features=10"))
    out.append(libsvm_case("bare-path", GOOD, 0, None, spec="{W}/d.svm"))
    out.append(libsvm_case("features-2^31", GOOD, 2, r"--data:.*features=2147483648",
                           spec="libsvm:path={W}/d.svm,features=2147483648"))
    out.append(libsvm_case("features-word", GOOD, 2, r"--data:.*features",
                           spec="libsvm:path={W}/d.svm,features=abc"))
    out.append(libsvm_case("gz-ok", GOOD, 0, None, gz=True))
    out.append(libsvm_case("gz-index-0", "+1 0:1\n", 1, r"d\.svm:1: feature index 0", gz=True))

    def truncated_gz(env, work):
        data = gzip.compress(GOOD.encode())
        write(os.path.join(work, "d.svm"), data[:len(data) // 2], "wb")
    c = libsvm_case("gz-truncated", "", 1, r"d\.svm: truncated gzip")
    c.setup = truncated_gz
    out.append(c)

    def corrupt_gz(env, work):
        data = bytearray(gzip.compress(GOOD.encode()))
        data[12] ^= 0xFF
        data[20] ^= 0xFF
        write(os.path.join(work, "d.svm"), bytes(data), "wb")
    c = libsvm_case("gz-corrupt", "", 1, r"d\.svm")
    c.setup = corrupt_gz
    out.append(c)
    out.append(libsvm_case("missing", "", 1, r"nothere\.svm: cannot open",
                           spec="libsvm:path={W}/nothere.svm"))
    out.append(libsvm_case("directory", "", 1, r"case-\w+: .*[Ii]s a directory",
                           spec="libsvm:path={W}"))
    out.append(libsvm_case("test-wider", GOOD, 0, None,
                           spec="libsvm:path={W}/d.svm,test={W}/d.svm"))
    for name, spec in [("idx-missing", "idx:images={W}/i,labels={W}/l"),
                       ("idx-empty", "idx:images={W}/e,labels={W}/e")]:
        def setup(env, work):
            write(os.path.join(work, "e"), "")
        out.append(Case("data", name, TRAIN[:2] + [spec] + TRAIN[3:], 1, r"/(i|e)\b",
                        setup=setup))
    synth = [("n-0", "synthetic:n=0", 2), ("d-0", "synthetic:d=0", 2),
             ("n-huge", "synthetic:n=1000000000000", 2), ("d-huge", "synthetic:d=1000000000000", 2),
             ("classes-1", "synthetic:task=softmax,classes=1", 2),
             ("noise-nan", "synthetic:noise=nan", 2), ("cond-neg", "synthetic:cond=-1", 2),
             ("test-fraction-1", "synthetic:n=64,test_fraction=1", 2),
             ("test-fraction-neg", "synthetic:n=64,test_fraction=-0.5", 2),
             ("limit-word", "synthetic:n=64,limit=abc", 2),
             ("n-times-d", "synthetic:n=64,d=16777216", 2),
             ("d-2^24+1", "synthetic:n=2,d=16777217", 2)]
    for name, spec, rc in synth:
        out.append(Case("data", "synthetic-" + name, TRAIN[:2] + [spec] + TRAIN[3:], rc,
                        r"--data"))
    out.append(Case("data", "idx-dev-zero", TRAIN[:2] + ["idx:images=/dev/zero,labels=/dev/zero"] +
                    TRAIN[3:], 1, r"/dev/zero: more than 1 GiB read from a device", timeout=60))
    out.append(Case("data", "libsvm-dev-zero", TRAIN[:2] + ["libsvm:/dev/zero"] + TRAIN[3:], 1,
                    r"/dev/zero: more than 1 GiB", timeout=60))
    out.append(Case("data", "test-data-width", TRAIN + ["--test-data", "synthetic:n=64,d=7"], 2,
                    r"--test-data"))
    return out
