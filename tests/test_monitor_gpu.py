"""GPU reading through NVML, tested with a stand-in NVML module.

There is no GPU (and no NVML library) on the CI machine, so ``FakeNvml`` below stands in for
``pynvml``: same function names, same units (bytes, mW, mJ), and the real ``pynvml``
exception classes. Its numbers are shaped like an H100 under load (device memory in GiB, power
in the hundreds of watts, an energy counter far from zero). On a machine with a GPU the real
path runs in ``test_real_nvml_reads_this_machine`` and in ``scripts/nvml_check.py``.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from vlmhb.monitor import ResourceMonitor, gpu_names, visible_gpus
from vlmhb.monitor.gpu import GpuReader, parse_visible_devices

GIB = 2**30
LOST = "lost"
UNSUPPORTED = "unsupported"


@dataclass
class FakeGpu:
    """One stand-in GPU: a list of readings, one per sampling tick (the last one repeats).

    A reading maps ``memory, sm, mem, power_mw, energy_mj, procs`` to a value, or to
    ``UNSUPPORTED`` (NVML_ERROR_NOT_SUPPORTED); a reading equal to ``LOST`` makes every
    query raise NVML_ERROR_GPU_IS_LOST.
    """

    name: str
    uuid: str
    readings: list[Any]
    tick: int = -1
    calls: int = 0

    def value(self, key: str) -> Any:
        self.calls += 1
        reading = self.readings[min(self.tick, len(self.readings) - 1)]
        if reading == LOST:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        found = reading[key]
        if found == UNSUPPORTED:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return found


@dataclass
class FakeNvml:
    """Stand-in for the ``pynvml`` module (see the module docstring for why)."""

    gpus: list[FakeGpu]
    init_error: int | None = None
    inits: int = 0
    shutdowns: int = 0
    NVMLError: type = field(default=pynvml.NVMLError)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: FakeGpu) -> int:
        return self.gpus.index(handle)

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return handle.name

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> SimpleNamespace:
        handle.tick += 1  # the reader asks for memory first on every tick
        return SimpleNamespace(used=handle.value("memory"), total=80 * GIB)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=handle.value("sm"), memory=handle.value("mem"))

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        return handle.value("power_mw")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        return handle.value("energy_mj")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        procs = handle.value("procs")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in procs]


WORKER, CHILD, OTHER = 4242, 4243, 999


def h100(**changes: Any) -> dict[str, Any]:
    """One reading shaped like an H100 running the worker (pids WORKER and CHILD) and OTHER."""
    reading = {
        "memory": 20 * GIB,
        "sm": 85,
        "mem": 40,
        "power_mw": 350_000,
        "energy_mj": 7_000_000_000,
        "procs": [(WORKER, 12 * GIB), (CHILD, 2 * GIB), (OTHER, 5 * GIB)],
    }
    reading.update(changes)
    return reading


def one_gpu(readings: list[Any]) -> FakeNvml:
    return FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3", "GPU-aaaa", readings)])


def test_energy_counter_gives_energy_since_first_reading() -> None:
    nvml = one_gpu(
        [
            h100(energy_mj=7_000_000_000),
            h100(energy_mj=7_000_030_000, memory=21 * GIB),
            h100(energy_mj=7_000_100_000, sm=UNSUPPORTED),
        ]
    )
    reader = GpuReader(nvml, [0])
    rows = [reader.read(t, {WORKER, CHILD}) for t in (0.0, 0.1, 0.2)]
    assert reader.status == "ok"
    assert reader.columns == [
        "gpu0_mem_used_mb",
        "gpu0_proc_mem_mb",
        "gpu0_sm_util",
        "gpu0_mem_util",
        "gpu0_power_w",
        "gpu0_energy_j",
    ]
    assert [r["gpu0_energy_j"] for r in rows] == [0.0, 30.0, 100.0]
    assert reader.energy_sources() == {0: "counter"}
    assert rows[0]["gpu0_mem_used_mb"] == 20 * 1024
    assert rows[1]["gpu0_mem_used_mb"] == 21 * 1024
    assert rows[0]["gpu0_proc_mem_mb"] == 14 * 1024  # worker + child, not OTHER
    assert rows[0]["gpu0_power_w"] == 350.0
    assert (rows[0]["gpu0_sm_util"], rows[0]["gpu0_mem_util"]) == (85.0, 40.0)
    assert math.isnan(rows[2]["gpu0_sm_util"])  # one unsupported query is not a lost GPU
    reader.close()
    reader.close()
    assert (nvml.inits, nvml.shutdowns) == (1, 1)


def test_power_is_integrated_where_there_is_no_energy_counter() -> None:
    readings = [
        h100(energy_mj=UNSUPPORTED, power_mw=100_000),
        h100(energy_mj=UNSUPPORTED, power_mw=200_000),
        h100(energy_mj=UNSUPPORTED, power_mw=UNSUPPORTED),
        h100(energy_mj=UNSUPPORTED, power_mw=300_000),
    ]
    reader = GpuReader(one_gpu(readings), None)
    rows = [reader.read(t, ()) for t in (0.0, 0.5, 1.0, 1.5)]
    energy = [r["gpu0_energy_j"] for r in rows]
    # trapezoids: (100+200)/2*0.5 = 75; a gap keeps 75; then (200+300)/2*(1.5-0.5) = 250
    assert energy == [0.0, 75.0, 75.0, 325.0]
    assert reader.energy_sources() == {0: "power"}
    assert math.isnan(rows[2]["gpu0_power_w"])
    assert rows[0]["gpu0_proc_mem_mb"] == 0.0  # no pid of ours on the GPU


def test_lost_gpu_is_recorded_once_and_the_other_gpu_read_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lost = FakeGpu("NVIDIA H100", "GPU-aaaa", [h100(), h100(energy_mj=7_000_050_000), LOST])
    healthy = FakeGpu("NVIDIA H100", "GPU-bbbb", [h100(power_mw=100_000)])
    reader = GpuReader(FakeNvml([lost, healthy]), [0, 1])
    caplog.set_level(logging.INFO, logger="vlmhb.monitor")
    rows = [reader.read(t, {WORKER}) for t in (0.0, 0.1, 0.2, 0.3, 0.4)]
    assert reader.status == "GPU lost at t=0.2s"
    assert [r["gpu0_energy_j"] for r in rows[:2]] == [0.0, 50.0]
    assert all(math.isnan(v) for r in rows[2:] for k, v in r.items() if k.startswith("gpu0_"))
    assert [r["gpu1_power_w"] for r in rows] == [100.0] * 5
    calls_after_loss = lost.calls
    reader.read(0.5, ())
    assert lost.calls == calls_after_loss  # a lost GPU is not asked again
    assert len([r for r in caplog.records if "lost" in r.getMessage()]) == 1


def test_devices_resolve_by_index_and_uuid_and_skip_absent_ones() -> None:
    gpus = [FakeGpu(f"GPU {i}", f"GPU-{i}", [h100()]) for i in range(3)]
    assert GpuReader(FakeNvml(gpus), ["GPU-2", 0, 7]).indices == [2, 0]
    assert GpuReader(FakeNvml(gpus), None).indices == [0, 1, 2]
    unknown = GpuReader(FakeNvml(gpus), ["GPU-zzzz"])
    assert unknown.status.startswith("no GPU")
    assert unknown.columns == []


def test_no_gpu_statuses() -> None:
    assert GpuReader(FakeNvml([]), None).status == "no GPU"
    driver = FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    assert GpuReader(driver, None).status.startswith("no GPU (NVML: Driver Not Loaded")
    missing = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    assert GpuReader(missing, None).status == "no NVML library"
    assert GpuReader(None, None).status == "no NVML library"
    untouched = one_gpu([h100()])
    assert GpuReader(untouched, []).status == "no GPU"  # CUDA_VISIBLE_DEVICES=""
    assert untouched.inits == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("0,2", [0, 2]),
        (" 1 , GPU-ab12 ", [1, "GPU-ab12"]),
        ("0,-1,1", [0]),
        ("1,nonsense,2", [1]),
    ],
)
def test_parse_visible_devices(value: str | None, expected: list[Any] | None) -> None:
    assert parse_visible_devices(value) == expected


def test_scheduler_helpers_with_stand_in_and_real_nvml() -> None:
    nvml = FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3", "GPU-a", [h100()])] * 2)
    assert visible_gpus(nvml) == [0, 1]
    assert gpu_names(nvml) == ["NVIDIA H100 80GB HBM3"] * 2
    assert nvml.inits == nvml.shutdowns == 2
    if not _nvml_works():
        assert visible_gpus() == [] and gpu_names() == []  # the real library, no GPU here


def test_monitor_thread_with_stand_in_gpu_and_real_process(tmp_path: Any) -> None:
    """The sampler end to end: a real sleeping process, a stand-in GPU that is then lost."""
    import pandas as pd

    readings = [h100(energy_mj=7_000_000_000 + 10_000 * i) for i in range(8)] + [LOST]
    nvml = one_gpu(readings)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        monitor = ResourceMonitor(
            proc.pid, gpus=[0], interval_s=0.02, energy_every_s=0.0, nvml=nvml
        )
        monitor.start()
        deadline = time.monotonic() + 5
        while not monitor.gpu_status.startswith("GPU lost") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # a few ticks after the loss
        snapshot = monitor.snapshot()
        monitor.stop()
    finally:
        proc.kill()
        proc.wait()
    frame = monitor.frame()
    summary = monitor.summary()
    assert summary["gpu_status"].startswith("GPU lost at t=")
    assert summary["gpus"] == [0]
    assert summary["energy_j"] == 70.0  # the counter's last reading before the loss
    assert summary["energy_source"] == "counter"
    assert summary["vram_peak_mb"] == 20 * 1024
    assert summary["vram_proc_peak_mb"] == 0.0  # the fake's pids are not our process's
    assert summary["sm_util_mean_pct"] == 85.0
    assert summary["rss_peak_mb"] > 1
    assert snapshot["vram_mb"] is None  # by then the GPU was lost
    assert frame["gpu0_mem_used_mb"].notna().sum() == 8
    assert nvml.shutdowns == 1
    written = monitor.write(tmp_path)
    assert written == tmp_path / "resources.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(written), frame)


def _nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not _nvml_works(), reason="needs NVML and a GPU (none on this machine)")
def test_real_nvml_reads_this_machine() -> None:
    monitor = ResourceMonitor(os.getpid(), gpus=None, interval_s=0.05)
    monitor.start()
    time.sleep(0.5)
    monitor.stop()
    summary = monitor.summary()
    assert summary["gpu_status"] == "ok"
    assert summary["vram_peak_mb"] > 0
    assert summary["energy_source"] in ("counter", "power")


def test_slow_readings_are_taken_at_their_own_rate() -> None:
    """Utilization and the process list are read every ``slow_every_s``, repeated between."""
    readings = [h100(sm=10 * i, procs=[(WORKER, i * GIB)]) for i in range(10)]
    nvml = one_gpu(readings)
    asked: list[str] = []
    for name in ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetComputeRunningProcesses"):
        original = getattr(nvml, name)

        def counted(handle: FakeGpu, _name: str = name, _original: Any = original) -> Any:
            asked.append(_name)
            return _original(handle)

        setattr(nvml, name, counted)
    reader = GpuReader(nvml, None, slow_every_s=0.5)
    rows = [reader.read(i / 10, {WORKER}) for i in range(10)]
    assert asked.count("nvmlDeviceGetComputeRunningProcesses") == 2  # t = 0.0 and 0.5
    assert [r["gpu0_sm_util"] for r in rows] == [0.0] * 5 + [50.0] * 5
    assert [r["gpu0_proc_mem_mb"] for r in rows] == [0.0] * 5 + [5 * 1024.0] * 5
    assert [r["gpu0_power_w"] for r in rows] == [350.0] * 10  # fast readings every tick


def test_energy_counter_is_read_rarely_but_the_total_stays_exact() -> None:
    """The counter query is costly: read every ``energy_every_s`` and at the final tick."""
    readings = [h100(energy_mj=7_000_000_000 + 1_000 * i) for i in range(10)]
    nvml = one_gpu(readings)
    asked: list[float] = []
    original = nvml.nvmlDeviceGetTotalEnergyConsumption

    def counted(handle: FakeGpu) -> Any:
        asked.append(handle.tick)
        return original(handle)

    nvml.nvmlDeviceGetTotalEnergyConsumption = counted  # type: ignore[method-assign]
    reader = GpuReader(nvml, None, energy_every_s=0.5)
    rows = [reader.read(i / 10, (), final=i == 9) for i in range(10)]
    assert asked == [0, 5, 9]  # t = 0.0, 0.5, and the final reading
    assert [r["gpu0_energy_j"] for r in rows] == [0.0] * 5 + [5.0] * 4 + [9.0]
