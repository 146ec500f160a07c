"""The tables. Enums are stored as their string values; ids of jobs and runs are UUIDs;
raw latency samples are kept (JSON) beside their statistics.

Statuses and states are StrEnum columns (``_enum_of``): stored as the same VARCHAR values
as before (migration 0006 changes no data), read back as members, and a value outside the
enum is refused on write. A member compares equal to its string, so ``run.status ==
"failed"`` keeps working.

One module per concern: ``base`` (the declarative base and the status enums), ``runs``
(models, jobs, runs and what they leave), ``sweeps``, ``alerts``, ``tokens``. Import the
package (``from orchestrator.store import models as db``): every table is here.
"""

from orchestrator.store.models.alerts import (
    AlertFinding as AlertFinding,
)
from orchestrator.store.models.alerts import (
    AlertStatus as AlertStatus,
)
from orchestrator.store.models.alerts import (
    AlertSummary as AlertSummary,
)
from orchestrator.store.models.alerts import (
    AlertTriage as AlertTriage,
)
from orchestrator.store.models.alerts import (
    CheckResult as CheckResult,
)
from orchestrator.store.models.alerts import (
    NightAnalysis as NightAnalysis,
)
from orchestrator.store.models.alerts import (
    NotificationDelivery as NotificationDelivery,
)
from orchestrator.store.models.base import (
    TS as TS,
)
from orchestrator.store.models.base import (
    AttemptOutcome as AttemptOutcome,
)
from orchestrator.store.models.base import (
    Base as Base,
)
from orchestrator.store.models.base import (
    BisectMode as BisectMode,
)
from orchestrator.store.models.base import (
    BisectState as BisectState,
)
from orchestrator.store.models.base import (
    JobStatus as JobStatus,
)
from orchestrator.store.models.base import (
    RunStatus as RunStatus,
)
from orchestrator.store.models.runs import (
    Device as Device,
)
from orchestrator.store.models.runs import (
    Job as Job,
)
from orchestrator.store.models.runs import (
    Measurement as Measurement,
)
from orchestrator.store.models.runs import (
    Model as Model,
)
from orchestrator.store.models.runs import (
    ModelOp as ModelOp,
)
from orchestrator.store.models.runs import (
    OpPlacement as OpPlacement,
)
from orchestrator.store.models.runs import (
    ProbeResult as ProbeResult,
)
from orchestrator.store.models.runs import (
    RawResult as RawResult,
)
from orchestrator.store.models.runs import (
    Run as Run,
)
from orchestrator.store.models.runs import (
    RunAttempt as RunAttempt,
)
from orchestrator.store.models.runs import (
    Verdict as Verdict,
)
from orchestrator.store.models.sweeps import (
    MissingKind as MissingKind,
)
from orchestrator.store.models.sweeps import (
    NightTrigger as NightTrigger,
)
from orchestrator.store.models.sweeps import (
    Sweep as Sweep,
)
from orchestrator.store.models.sweeps import (
    SweepBaseline as SweepBaseline,
)
from orchestrator.store.models.sweeps import (
    SweepMissing as SweepMissing,
)
from orchestrator.store.models.tokens import (
    ApiRole as ApiRole,
)
from orchestrator.store.models.tokens import (
    ApiToken as ApiToken,
)
