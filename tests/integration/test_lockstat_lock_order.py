#!/usr/bin/env python3
"""lockstat --lock-order on real BPF: the lock-order edges and cycles it reports must be the ones
the lockorder workload recorded making (every edge, its thread and the function that made it)."""
import os
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk


def read_record(path):
    """The workload's record: locks by name, the edges it made, the pairs that must make none, and
    the cycles among its edges."""
    locks, edges, nones, cycles = {}, {}, [], []
    with open(path) as f:
        for line in f:
            w = line.split()
            if w[0] == "lock":
                locks[w[1]] = {"address": int(w[2], 16), "kind": w[3], "heap": w[4] == "1"}
            elif w[0] == "edge":
                edges[(w[1], w[2])] = {"tid": int(w[3]), "function": w[4], "from_mode": w[5], "to_mode": w[6]}
            elif w[0] == "none":
                nones.append({"from": w[1], "to": w[2], "tid": int(w[3]), "function": w[4], "why": w[5]})
            elif w[0] == "cycle":
                cycles.append(w[1:])
    return locks, edges, nones, cycles


def rotations(names):
    """One canonical form of a cycle: the rotation that starts at its smallest name."""
    i = names.index(min(names))
    return tuple(names[i:] + names[:i])


class LockOrder(unittest.TestCase):
    """lockstat --lock-order --json FILE -- lockorder RECORD."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.record_path = os.path.join(cls.tmp.name, "record.txt")
        cls.json_path = os.path.join(cls.tmp.name, "lockstat.json")
        cls.result = None
        if lk.bpf_unavailable_reason():
            return
        cls.result = subprocess.run(
            [lk.binary("lockstat"), "--lock-order", "--json", cls.json_path, "-n", "0",
             "--", lk.binary("lockorder"), cls.record_path],
            capture_output=True, text=True, timeout=300)
        if cls.result.returncode != 0:
            return
        cls.locks, cls.edges, cls.nones, cls.cycles = read_record(cls.record_path)
        cls.report = lk.load_json(cls.json_path)
        cls.order = cls.report["lock_order"]
        # The tool's ids (names, labels or addresses) as the workload's names, through addresses.
        by_address = {l["address"]: name for name, l in cls.locks.items()}
        cls.name_of = {}
        cls.tool_locks = {}
        for l in cls.order["locks"]:
            name = by_address.get(int(l["address"], 16))
            if name:
                cls.name_of[l["id"]] = name
                cls.tool_locks[name] = l
        # Edges between the workload's own locks only (nothing else in it takes pthread locks,
        # but the C library could).
        cls.tool_edges = {}
        for e in cls.order["edges"]:
            if e["from"] in cls.name_of and e["to"] in cls.name_of:
                key = (cls.name_of[e["from"]], cls.name_of[e["to"]], e["from_mode"], e["to_mode"])
                cls.tool_edges[key] = e
        cls.tool_cycles = {}
        for c in cls.order["cycles"]:
            names = [cls.name_of.get(i, i) for i in c["locks"]]
            cls.tool_cycles[rotations(names)] = c

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertIsNotNone(self.result)
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def assert_cycle(self, names):
        """The cycle is reported, each of its edges by the thread that made it, with a frame of the
        function that took the lock."""
        cycle = self.tool_cycles.get(rotations(names))
        self.assertIsNotNone(cycle, f"cycle {names} not reported; reported: {sorted(self.tool_cycles)}")
        self.assertEqual(len(cycle["edges"]), len(names))
        for i, e in enumerate(cycle["edges"]):
            self.assertEqual(self.name_of.get(e["from"]), self.name_of.get(cycle["locks"][i]))
            self.assertEqual(self.name_of.get(e["to"]), self.name_of.get(cycle["locks"][(i + 1) % len(names)]))
            made = self.edges[(self.name_of[e["from"]], self.name_of[e["to"]])]
            self.assertEqual(e["tid"], made["tid"], e)
            self.assertTrue(any(made["function"] in f for f in e["frames"]),
                            f"no frame names {made['function']}: {e['frames']}")
        return cycle

    def assert_in_no_cycle(self, *names):
        for cycle in self.tool_cycles:
            for n in names:
                self.assertNotIn(n, cycle, f"{n} reported in cycle {cycle}")

    def test_two_lock_inversion_is_reported(self):
        self.assert_cycle(["inv_a", "inv_b"])
        # The text report names it too (from whichever of the two has the lower address).
        self.assertRegex(self.result.stdout,
                         r"\n  Potential deadlock \d+: (inv_a -> inv_b -> inv_a|inv_b -> inv_a -> inv_b)\n")

    def test_three_lock_cycle_is_reported(self):
        self.assert_cycle(["cyc_a", "cyc_b", "cyc_c"])
        # Its three locks make no shorter cycle.
        for pair in (("cyc_a", "cyc_b"), ("cyc_b", "cyc_c"), ("cyc_a", "cyc_c")):
            self.assertNotIn(rotations(list(pair)), self.tool_cycles)

    def test_every_cycle_the_workload_made_and_no_other(self):
        ours = {c for c in self.tool_cycles if all(n in self.locks for n in c)}
        self.assertEqual(ours, {rotations(c) for c in self.cycles})
        self.assertFalse(self.order["truncated"])

    def test_every_edge_the_workload_made_and_no_other(self):
        expected = {(f, t, m["from_mode"], m["to_mode"]): m["tid"] for (f, t), m in self.edges.items()}
        got = {k: e["tid"] for k, e in self.tool_edges.items()}
        self.assertEqual(got, expected)

    def test_consistent_order_is_never_reported(self):
        # The edge is there (made by the first of the two threads), and no cycle has it.
        e = self.tool_edges.get(("ord_x", "ord_y", "exclusive", "exclusive"))
        self.assertIsNotNone(e)
        self.assertEqual(e["tid"], self.edges[("ord_x", "ord_y")]["tid"])
        self.assert_in_no_cycle("ord_x", "ord_y")

    def test_trylock_inversion_makes_no_edge(self):
        self.assertIn(("try_a", "try_b", "exclusive", "exclusive"), self.tool_edges)
        self.assertFalse([k for k in self.tool_edges if k[:2] == ("try_b", "try_a")])
        self.assert_in_no_cycle("try_a", "try_b")

    def test_read_read_order_makes_no_edge(self):
        self.assertFalse([k for k in self.tool_edges if k[0] in ("rd_a", "rd_b") or k[1] in ("rd_a", "rd_b")])
        self.assert_in_no_cycle("rd_a", "rd_b")

    def test_read_then_write_against_write_then_write_is_reported(self):
        cycle = self.assert_cycle(["rwx_a", "rwx_b"])
        modes = {(self.name_of[e["from"]], e["from_mode"], e["to_mode"]) for e in cycle["edges"]}
        self.assertEqual(modes, {("rwx_a", "read", "write"), ("rwx_b", "write", "write")})

    def test_read_held_and_read_taken_lock_breaks_the_cycle(self):
        # Both edges are recorded, but the second reader of rws_a waits for nobody.
        self.assertIn(("rws_a", "rws_b", "read", "write"), self.tool_edges)
        self.assertIn(("rws_b", "rws_a", "write", "read"), self.tool_edges)
        self.assert_in_no_cycle("rws_a", "rws_b")
        self.assertGreaterEqual(self.order["shared_only_cycles"], 1)

    def test_recursive_relock_makes_no_edge(self):
        rec = {k for k in self.tool_edges if k[0].startswith("rec_") or k[1].startswith("rec_")}
        self.assertEqual(rec, {("rec_m", "rec_inner", "exclusive", "exclusive")})

    def test_heap_locks_are_named_by_init_labels(self):
        cycle = self.assert_cycle(["heap_1", "heap_2"])
        for i in cycle["locks"]:
            self.assertTrue(i.startswith("#"), f"heap lock {i} has no init label")
        for name in ("heap_1", "heap_2"):
            lock = self.tool_locks[name]
            self.assertEqual(lock["name"], lock["id"])
            self.assertTrue(any("make_heap_lock" in f for f in lock["init_stack"]), lock["init_stack"])
        self.assertNotEqual(self.tool_locks["heap_1"]["id"], self.tool_locks["heap_2"]["id"])


if __name__ == "__main__":
    lk.main()
