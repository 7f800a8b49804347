"""GPU readings through NVML: the only code in vlmhb that calls ``pynvml``.

``GpuReader`` takes an NVML module object (the real ``pynvml`` from ``nvidia-ml-py``, or a
stand-in with recorded numbers in tests, since CI has no GPU) and turns one call of
``read(t, pids)`` into one row of ``gpu{i}_*`` columns, ``i`` being the GPU's NVML index:

* ``mem_used_mb``: device memory in use (every process on that GPU);
* ``proc_mem_mb``: memory of the worker's process tree (``nvmlDeviceGetComputeRunningProcesses``;
  NaN where NVML does not say, 0 when none of the tree's pids is on the GPU, which is also what
  a container without the host's pid namespace sees);
* ``sm_util`` / ``mem_util``: utilization rates in %;
* ``power_w``: power draw;
* ``energy_j``: energy since the reader's first reading: the driver's energy counter
  (``nvmlDeviceGetTotalEnergyConsumption``, Volta and later) where it exists, else the power
  readings integrated with the trapezoid rule.

Queries a GPU does not support give NaN for that column. Any other NVML error marks that GPU
lost: logged once, its columns NaN from then on, ``status`` says ``GPU lost at t=…``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NAN = math.nan
MB = 2**20
GPU_COLUMNS = ("mem_used_mb", "proc_mem_mb", "sm_util", "mem_util", "power_w", "energy_j")

STATUS_OK = "ok"
STATUS_NO_LIBRARY = "no NVML library"
STATUS_NO_GPU = "no GPU"

# NVML return codes that mean "this query is not available here", not "the GPU is gone".
_UNSUPPORTED_CODES = (3, 4)  # NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NO_PERMISSION


def gpu_columns(index: int) -> list[str]:
    """Column names of one GPU in the resource time series."""
    return [f"gpu{index}_{name}" for name in GPU_COLUMNS]


def import_nvml() -> Any:
    """The ``pynvml`` module of ``nvidia-ml-py``, or None where it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def init_nvml(nvml: Any) -> str:
    """Initialise NVML; return ``"ok"`` or why it cannot be used (never raises)."""
    if nvml is None:
        return STATUS_NO_LIBRARY
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        if type(exc).__name__ == "NVMLError_LibraryNotFound":
            return STATUS_NO_LIBRARY
        return f"{STATUS_NO_GPU} (NVML: {exc})"
    return STATUS_OK


def nvml_status(nvml: Any = None) -> str:
    """``ok``, ``no NVML library`` or ``no GPU (NVML: …)``: can NVML be used here?"""
    nvml = nvml if nvml is not None else import_nvml()
    status = init_nvml(nvml)
    if status == STATUS_OK:
        _shutdown(nvml)
    return status


def visible_gpus(nvml: Any = None) -> list[int]:
    """NVML indices of every GPU on this machine; [] without NVML or GPU."""
    nvml = nvml if nvml is not None else import_nvml()
    if init_nvml(nvml) != STATUS_OK:
        return []
    try:
        return list(range(nvml.nvmlDeviceGetCount()))
    except nvml.NVMLError as exc:
        log.warning("NVML cannot count GPUs: %s", exc)
        return []
    finally:
        _shutdown(nvml)


def gpu_names(nvml: Any = None) -> list[str]:
    """Names of every GPU on this machine in NVML index order; [] without NVML or GPU."""
    nvml = nvml if nvml is not None else import_nvml()
    if init_nvml(nvml) != STATUS_OK:
        return []
    try:
        count = nvml.nvmlDeviceGetCount()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        return [_text(nvml.nvmlDeviceGetName(handle)) for handle in handles]
    except nvml.NVMLError as exc:
        log.warning("NVML cannot name GPUs: %s", exc)
        return []
    finally:
        _shutdown(nvml)


def parse_visible_devices(value: str | None) -> list[int | str] | None:
    """Entries of a ``CUDA_VISIBLE_DEVICES`` value: ints, or UUID strings; None when unset.

    Like CUDA, the list ends at the first entry that is neither an index nor a UUID; a
    negative index hides every later GPU.
    """
    if value is None:
        return None
    entries: list[int | str] = []
    for raw in value.split(","):
        item = raw.strip()
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                break
            entries.append(int(item))
        elif item.startswith(("GPU-", "MIG-")):
            entries.append(item)
        else:
            break
    return entries


@dataclass
class _Gpu:
    """One watched GPU: its handle and its energy bookkeeping."""

    index: int
    handle: Any
    energy_source: str | None = None  # "counter" | "power", fixed by the first reading
    counter_start_mj: float = NAN
    last_t: float = NAN
    last_power_w: float = NAN
    energy_j: float = 0.0
    lost: bool = False
    # Slow-changing, costly readings (utilization, per-process memory), refreshed less often.
    slow_t: float = -math.inf
    energy_t: float = -math.inf
    slow_values: tuple[float, float, float] = (NAN, NAN, NAN)


class GpuReader:
    """Reads the watched GPUs through an NVML module; never raises out of ``read``."""

    def __init__(
        self,
        nvml: Any,
        devices: Sequence[int | str] | None,
        slow_every_s: float = 0.0,
        energy_every_s: float = 0.0,
    ) -> None:
        """Open NVML and resolve ``devices`` (NVML indices or UUIDs; None = every GPU).

        Memory, power and energy are read at every call. Utilization and the per-process
        memory list cost more NVML time (the process list most) and change slowly (NVML
        averages utilization over up to a second): they are read at most every
        ``slow_every_s`` seconds and repeated in between. The energy counter is cumulative
        but its query is by far the costliest (about 4 ms of CPU on an H200, the others a few
        microseconds): it is read every ``energy_every_s`` and on the ``final`` reading, so
        totals stay exact.
        """
        self._nvml = nvml
        self._slow_every_s = slow_every_s
        self._energy_every_s = energy_every_s
        self._gpus: list[_Gpu] = []
        # An empty device list (CUDA_VISIBLE_DEVICES="") needs no NVML at all.
        self.status = STATUS_NO_GPU if devices is not None and not devices else init_nvml(nvml)
        self._initialised = self.status == STATUS_OK
        if self._initialised:
            self._resolve(devices)
        if self.status != STATUS_OK:
            log.info("GPU monitoring off: %s", self.status)

    @property
    def indices(self) -> list[int]:
        """NVML indices of the GPUs being read."""
        return [gpu.index for gpu in self._gpus]

    @property
    def columns(self) -> list[str]:
        """Column names ``read`` returns, in order."""
        return [name for gpu in self._gpus for name in gpu_columns(gpu.index)]

    def energy_sources(self) -> dict[int, str | None]:
        """How each GPU's energy is known: ``counter``, ``power`` (integrated) or None."""
        return {gpu.index: gpu.energy_source for gpu in self._gpus}

    def _resolve(self, devices: Sequence[int | str] | None) -> None:
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            wanted: Sequence[int | str] = list(range(count)) if devices is None else devices
            for device in wanted:
                if isinstance(device, str):
                    handle = nvml.nvmlDeviceGetHandleByUUID(device)
                    index = nvml.nvmlDeviceGetIndex(handle)
                elif 0 <= device < count:
                    index, handle = device, nvml.nvmlDeviceGetHandleByIndex(device)
                else:
                    log.warning("GPU %s is not on this machine (NVML sees %d)", device, count)
                    continue
                self._gpus.append(_Gpu(index=index, handle=handle))
        except nvml.NVMLError as exc:
            self.status = f"{STATUS_NO_GPU} (NVML: {exc})"
            self._gpus = []
            return
        if not self._gpus:
            self.status = STATUS_NO_GPU

    def read(self, t: float, pids: Iterable[int] = (), final: bool = False) -> dict[str, float]:
        """One reading at ``t`` seconds of every watched GPU; NaN for what is unknown.

        ``final`` marks the last reading of a run: every counter is read afresh.
        """
        pid_set = set(pids)
        row: dict[str, float] = {}
        for gpu in self._gpus:
            values = [NAN] * len(GPU_COLUMNS)
            if not gpu.lost:
                try:
                    values = self._read_one(gpu, t, pid_set, final)
                except self._nvml.NVMLError as exc:
                    self._mark_lost(gpu, t, exc)
            row.update(zip(gpu_columns(gpu.index), values, strict=True))
        return row

    def close(self) -> None:
        """Shut NVML down (once)."""
        if self._initialised:
            self._initialised = False
            _shutdown(self._nvml)

    def _mark_lost(self, gpu: _Gpu, t: float, exc: Exception) -> None:
        gpu.lost = True
        if not self.status.startswith("GPU lost"):
            self.status = f"GPU lost at t={t:.1f}s"
        log.warning("GPU %d lost at t=%.1fs (NVML: %s); reading the rest", gpu.index, t, exc)

    def _read_one(self, gpu: _Gpu, t: float, pids: set[int], final: bool) -> list[float]:
        nvml, handle = self._nvml, gpu.handle
        memory = self._query(nvml.nvmlDeviceGetMemoryInfo, handle)
        if t - gpu.slow_t >= self._slow_every_s:
            rates = self._query(nvml.nvmlDeviceGetUtilizationRates, handle)
            gpu.slow_values = (
                self._process_memory_mb(handle, pids),
                NAN if rates is None else float(rates.gpu),
                NAN if rates is None else float(rates.memory),
            )
            gpu.slow_t = t
        power_mw = self._query(nvml.nvmlDeviceGetPowerUsage, handle)
        power_w = NAN if power_mw is None else power_mw / 1000.0
        return [
            NAN if memory is None else memory.used / MB,
            *gpu.slow_values,
            power_w,
            self._energy_j(gpu, t, power_w, final),
        ]

    def _query(self, function: Any, *args: Any) -> Any | None:
        """Call an NVML query; None when this GPU does not support it."""
        try:
            return function(*args)
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) in _UNSUPPORTED_CODES:
                return None
            raise

    def _process_memory_mb(self, handle: Any, pids: set[int]) -> float:
        processes = self._query(self._nvml.nvmlDeviceGetComputeRunningProcesses, handle)
        if processes is None:
            return NAN
        used = [p.usedGpuMemory for p in processes if p.pid in pids]
        if any(u is None for u in used):
            return NAN  # NVML knows the process but not its memory (e.g. under MIG/vGPU)
        return sum(used) / MB

    def _energy_j(self, gpu: _Gpu, t: float, power_w: float, final: bool = False) -> float:
        if gpu.energy_source == "counter" and not final and t - gpu.energy_t < self._energy_every_s:
            return gpu.energy_j  # the counter was read recently; it is read again later
        if gpu.energy_source in (None, "counter"):
            counter_mj = self._query(self._nvml.nvmlDeviceGetTotalEnergyConsumption, gpu.handle)
            if counter_mj is not None:
                if gpu.energy_source is None:
                    gpu.energy_source, gpu.counter_start_mj = "counter", float(counter_mj)
                gpu.energy_j = (counter_mj - gpu.counter_start_mj) / 1000.0
                gpu.energy_t = t
                return gpu.energy_j
            if gpu.energy_source == "counter":
                return NAN  # the counter answered before: do not mix in integrated power
        if math.isnan(power_w):
            return gpu.energy_j if gpu.energy_source == "power" else NAN
        if gpu.energy_source is None:
            gpu.energy_source = "power"
        elif not math.isnan(gpu.last_power_w):
            gpu.energy_j += (gpu.last_power_w + power_w) / 2.0 * (t - gpu.last_t)
        gpu.last_t, gpu.last_power_w = t, power_w
        return gpu.energy_j


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError as exc:
        log.debug("nvmlShutdown: %s", exc)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
