"""PJSIP (pjsua2) reference client for scripts/bench-scale.sh: registers up
to 8 accounts (PJSIP's per-process limit) and reports when all are
registered, then its peak RSS.

    python3 register.py PORT FIRST COUNT
prints "registered <unix time>" then "rss_kib <VmHWM>" and exits.
"""
import sys
import time

import pjsua2 as pj

port, first, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
done = set()


class Account(pj.Account):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def onRegState(self, prm):
        if prm.code == 200 and self.getInfo().regIsActive:
            done.add(self.n)


ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = 0
cfg.logConfig.consoleLevel = 0
cfg.medConfig.noVad = True
ep.libInit(cfg)
ep.audDevManager().setNullDev()
tcfg = pj.TransportConfig()
tcfg.port = 0
tcfg.boundAddress = "127.0.0.1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
ep.libStart()
accounts = []
for n in range(first, first + count):
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:user{n}@sipprofile.test"
    acfg.regConfig.registrarUri = f"sip:127.0.0.1:{port}"
    acfg.regConfig.timeoutSec = 3600
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", f"user{n}", 0, f"pw{n}"))
    a = Account(n)
    a.create(acfg)
    accounts.append(a)
deadline = time.time() + 60
while len(done) < count and time.time() < deadline:
    ep.libHandleEvents(10)
print("registered", time.time() if len(done) == count else -1, flush=True)
with open("/proc/self/status") as f:
    hwm = next(l.split()[1] for l in f if l.startswith("VmHWM:"))
print("rss_kib", hwm, flush=True)
import os
os._exit(0)  # the comparison measures registration, not PJSIP's teardown
