"""Property tests (hypothesis) of the core: fragments, random input, interleaving."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syslogng_netconsole.ingest import wire
from syslogng_netconsole.ingest.reassembly import ReassemblyLimits, Reassembler
from syslogng_netconsole.ingest.records import EXTENDED

# NETCONSOLE_HYPOTHESIS_EXAMPLES=5000 for a longer hunt; 150 keeps the tier fast
SETTINGS = settings(max_examples=int(os.environ.get("NETCONSOLE_HYPOTHESIS_EXAMPLES", "150")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def escape(data: bytes) -> bytes:
    """The kernel's msg_add_ext_text escaping."""
    return b"".join(b"\\x%02x" % c if c < 0x20 or c >= 0x7f or c == 0x5c else bytes((c,))
                    for c in data)


def fragment(header: bytes, body: bytes, cuts):
    """Split body at the given offsets into ncfrag datagrams (any sizes)."""
    total = len(body)
    points = sorted({c for c in cuts if 0 < c < total})
    out = []
    start = 0
    for end in points + [total]:
        out.append(header + b",ncfrag=%d/%d;" % (start, total) + body[start:end])
        start = end
    return out


texts = st.binary(min_size=0, max_size=600)
keyvals = st.lists(st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                             st.from_regex(r"[ -~]{0,20}", fullmatch=True)), max_size=4)


@st.composite
def ext_body(draw):
    text = draw(texts)
    body = escape(text) + b"\n"
    if draw(st.booleans()):
        body += b" SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n"
    for k, v in draw(keyvals):
        body += b" %s=%s\n" % (k.encode(), v.encode())
    return text, body


def feed_all(r, datagrams, host="10.9.9.9", t0=0.0, step=1e-4):
    t = t0
    for d in datagrams:
        r.process(d, host, 6665, 6666, t)
        t += step
    return t


@SETTINGS
@given(ext_body(), st.lists(st.integers(0, 4000), max_size=12), st.randoms(use_true_random=False),
       st.lists(st.integers(0, 20), max_size=6))
def test_any_split_shuffle_duplication_reassembles(tb, cuts, rnd, dups):
    text, body = tb
    header = b"6,4242,123456789,-,caller=T7"
    frags = fragment(header, body, cuts)
    for i in dups:      # duplicate some fragments
        frags.append(frags[i % len(frags)])
    rnd.shuffle(frags)
    r = Reassembler(ReassemblyLimits())
    t = feed_all(r, frags)
    r.flush(t)
    recs = r.records()
    assert len(recs) == 1
    x = recs[0]
    want_text, want_fields = wire.decode_ext_body(body)
    assert (x.text, x.fields) == (want_text, want_fields)
    assert not x.incomplete and x.seq == 4242 and x.caller == "T7"
    # the same record unfragmented decodes identically
    r2 = Reassembler(ReassemblyLimits())
    r2.process(header + b";" + body, "10.9.9.9", 6665, 6666, 0.0)
    r2.flush(1.0)
    (y,) = r2.records()
    assert (y.text, y.fields) == (x.text, x.fields)
    # text round trip: the original bytes come back (decoded visibly)
    assert x.text == wire.to_text(text)
    assert r.counters["dropped_internal_error"] == 0
    assert r.pending_bytes == 0


@SETTINGS
@given(st.lists(st.binary(max_size=1200), max_size=30), st.lists(st.floats(0, 5), max_size=30))
def test_random_bytes_never_raise(payloads, times):
    r = Reassembler(ReassemblyLimits())
    t = 0.0
    for i, p in enumerate(payloads):
        t += times[i] if i < len(times) else 0.01
        r.process(p, "10.0.0.%d" % (i % 3), 6665, 6666 + (i % 2), t)
        dl = r.next_deadline()
        if dl is not None and dl <= t:
            r.expire(t)
        r.records()
    r.flush(t + 10)
    r.records()
    assert r.counters["dropped_internal_error"] == 0
    assert r.pending_bytes == 0
    assert r.next_deadline() is None


header_like = st.builds(
    lambda rel, lvl, seq, ts, flag, extra, body: b"".join(
        [rel, b"%d,%d,%d," % (lvl, seq, ts), flag, extra, b";", body]),
    st.sampled_from([b"", b"6.1.0,", b"x,", b",,"]),
    st.integers(0, 300), st.integers(0, 2 ** 64 + 5), st.integers(0, 2 ** 64 + 5),
    st.sampled_from([b"-", b"c", b"+", b"x"]),
    st.sampled_from([b"", b",caller=T1", b",ncfrag=0/10", b",ncfrag=5/10", b",ncfrag=9/3",
                     b",ncfrag=0/10,ncfrag=0/10", b",ncfrag=/", b",foo=bar", b",ncfrag=0/20000"]),
    st.binary(max_size=40))


@SETTINGS
@given(st.lists(header_like, max_size=40), st.randoms(use_true_random=False))
def test_random_extended_headers_never_raise(payloads, rnd):
    r = Reassembler(ReassemblyLimits())
    t = 0.0
    for p in payloads:
        t += rnd.random() * 0.5
        r.process(p, "10.0.0.1", 6665, 6666, t)
        r.expire(t)
        r.records()
    r.flush(t + 10)
    r.records()
    assert r.counters["dropped_internal_error"] == 0
    assert r.pending_bytes == 0


@SETTINGS
@given(st.integers(2, 5), st.lists(st.integers(1, 1800), min_size=1, max_size=6),
       st.randoms(use_true_random=False))
def test_interleaved_hosts_never_mix(nhosts, sizes, rnd):
    # every host sends the same seqs/timestamps with its own text, fragmented
    per_host = {}
    want = {}
    for h in range(nhosts):
        host = "10.0.%d.1" % h
        dgs = []
        want[host] = []
        for i, n in enumerate(sizes):
            text = (b"host%d-rec%d:" % (h, i) + b"x" * n)[:n + 12]
            want[host].append(text.decode())
            body = text + b"\n"
            hdr = b"6,%d,%d,-" % (100 + i, 1000 * (i + 1))
            if len(body) > 900:
                dgs += fragment(hdr, body, [rnd.randint(1, len(body) - 1)])
            else:
                dgs.append(hdr + b";" + body)
        per_host[host] = dgs
    # random interleaving that keeps each host's own order
    order = [h for h, d in per_host.items() for _ in d]
    rnd.shuffle(order)
    pos = dict.fromkeys(per_host, 0)
    r = Reassembler(ReassemblyLimits())
    t = 0.0
    for host in order:
        r.process(per_host[host][pos[host]], host, 6665, 6666, t)
        pos[host] += 1
        t += 1e-4
    r.flush(t)
    got = {}
    for x in r.records():
        got.setdefault(x.host, []).append(x.text)
        assert x.format == EXTENDED and not x.incomplete
    assert got == want


@SETTINGS
@given(st.lists(st.integers(0, 40), min_size=1, max_size=40, unique=True),
       st.randoms(use_true_random=False))
def test_reorder_within_window_restores_seq_order(seqs, rnd):
    # records of one boot arrive shuffled within the reorder window
    base = sorted(seqs)
    shuffled = list(base)
    rnd.shuffle(shuffled)
    lim = ReassemblyLimits()
    r = Reassembler(lim)
    t = 0.0
    first = shuffled[0]
    for s in shuffled:
        r.process(b"6,%d,%d,-;r%d\n" % (s + 1000, (s + 1) * 1000, s), "10.0.0.1", 6665, 6666, t)
        t += lim.reorder_window / (4 * len(shuffled))
    r.flush(t)
    recs = r.records()
    got = [x.seq - 1000 for x in recs]
    # nothing lost, nothing duplicated
    assert sorted(got) == base
    # in order from the first record that arrived; lower seqs that came after
    # it are emitted as well (the stream started there)
    in_order = [s for s in got if s >= first]
    assert in_order == sorted(in_order)


@SETTINGS
@given(st.binary(min_size=1, max_size=3000).filter(lambda b: b"\n" not in b),
       st.integers(0, 3))
def test_plain_line_cut_at_1000_rejoins(payload_text, nlead):
    line = b"[   42.000001] " + payload_text + b"\n"
    lead = b"".join(b"[   41.00000%d] lead\n" % i for i in range(nlead))
    data = lead + line
    dgs = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    r = Reassembler(ReassemblyLimits())
    t = feed_all(r, dgs)
    r.flush(t)
    recs = r.records()
    assert [x.text for x in recs] == ["lead"] * nlead + [wire.to_text(payload_text)]
    assert not recs[-1].incomplete


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2500)), min_size=1, max_size=60),
       st.randoms(use_true_random=False),
       st.lists(st.sampled_from([0.0, 0.0, 0.0, 1e-4, 0.05, 0.3, 1.5]), min_size=1, max_size=50))
def test_every_record_comes_out_exactly_once(specs, rnd, steps):
    """Gaps, fragments, duplicates, local reordering and arbitrary pauses (so
    that reorder windows, fragment timeouts and holds fire in between): each
    record sent comes out exactly once, complete unless a piece of it was
    still missing when its timeout passed."""
    dgs = []
    seq = 1000
    sent = {}
    for gap, size in specs:
        seq += gap
        text = (b"rec%d:" % seq + b"z" * size)
        body = text + b"\n"
        hdr = b"6,%d,%d,-" % (seq, seq * 1000)
        sent[seq] = text.decode()
        if len(body) > 900:
            dgs.append(fragment(hdr, body, [rnd.randint(1, len(body) - 1) for _ in range(2)]))
        else:
            dgs.append([hdr + b";" + body])
    flat = [d for group in dgs for d in group]
    flat += [rnd.choice(flat) for _ in range(len(flat) // 4)]     # duplicates
    for i in range(len(flat) - 1):                                   # local reordering
        if rnd.random() < 0.2:
            flat[i], flat[i + 1] = flat[i + 1], flat[i]
    r = Reassembler(ReassemblyLimits())
    t = 0.0
    for i, d in enumerate(flat):
        t += steps[i % len(steps)]
        dl = r.next_deadline()
        if dl is not None and dl <= t:
            r.expire(t)
        r.process(d, "10.0.0.1", 6665, 6666, t)
    r.flush(t + 0.001)
    recs = r.records()
    got = {}
    for x in recs:
        assert x.seq not in got, "record %d emitted twice" % x.seq
        got[x.seq] = x
    assert sorted(got) == sorted(sent)
    for s, x in got.items():
        if x.incomplete:
            assert "[...]" in x.text
        else:
            assert x.text == sent[s]
    c = r.counters
    assert c["dropped_internal_error"] == 0 and c["reboots"] == 0 and r.pending_bytes == 0


@SETTINGS
@given(st.integers(1, 4), st.lists(st.integers(0, 1500), min_size=1, max_size=8),
       st.randoms(use_true_random=False))
def test_plain_and_extended_targets_of_many_hosts_never_mix(nhosts, sizes, rnd):
    """Each host has a plain and an extended target on the same port; plain
    lines are cut at 1000 bytes like netconsole does, datagrams of all hosts
    and both formats interleave (each target's own order kept)."""
    queues = {}
    want = {}
    for h in range(nhosts):
        host = "10.0.%d.1" % h
        plain = b""
        ext = []
        for i, n in enumerate(sizes):
            line = b"h%dp%d:" % (h, i) + b"p" * n
            plain += b"[%5d.%06d] " % (1, i) + line + b"\n"
            want[(host, "plain")] = want.get((host, "plain"), []) + [line.decode()]
            etext = b"h%de%d:" % (h, i) + b"e" * n
            want[(host, "extended")] = want.get((host, "extended"), []) + [etext.decode()]
            body = etext + b"\n"
            hdr = b"6,%d,%d,-" % (10 + i, 100 * (i + 1))
            ext += fragment(hdr, body, [900]) if len(body) > 900 else [hdr + b";" + body]
        # netconsole sends each record of the plain console in <= 1000-byte pieces
        pieces = []
        for rec in plain.split(b"\n")[:-1]:
            rec += b"\n"
            pieces += [rec[o:o + 1000] for o in range(0, len(rec), 1000)]
        queues[(host, "p")] = pieces
        queues[(host, "e")] = ext
    order = [k for k, q in queues.items() for _ in q]
    rnd.shuffle(order)
    r = Reassembler(ReassemblyLimits())
    t = 0.0
    for k in order:
        r.process(queues[k].pop(0), k[0], 6665, 6666, t)
        t += 1e-4
    r.flush(t)
    got = {}
    for x in r.records():
        got.setdefault((x.host, x.format), []).append(x.text)
        assert not x.incomplete
    assert got == want
