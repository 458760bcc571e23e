"""JSON schemas of the operators' custom resources Lectern uses (KEDA, the RabbitMQ
Cluster Operator, CloudNativePG).

The operators' full CRDs are not available offline (the RabbitmqCluster and CNPG
Cluster CRDs are megabytes of generated OpenAPI), so these are transcriptions of
the parts Lectern may use, from each project's API reference: field names, types,
enums and required fields. Unknown fields are rejected, so a typo or a field of
another API version fails here instead of at ``kubectl apply``.
"""

from __future__ import annotations

from typing import Any

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
OBJ = {"type": "object"}
QUANTITY = {"anyOf": [{"type": "string"}, {"type": "number"}]}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    },
}


def strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
    }


def resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return strict(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": strict(
                {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                    "namespace": STR,
                    "labels": {"type": "object", "additionalProperties": STR},
                    "annotations": {"type": "object", "additionalProperties": STR},
                },
                ("name",),
            ),
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )


# https://keda.sh/docs/2.16/reference/scaledobject-spec/ and scalers/rabbitmq-queue/
RABBITMQ_TRIGGER_METADATA = strict(
    {
        "host": STR,
        "hostFromEnv": STR,
        "protocol": {"enum": ["auto", "amqp", "http"]},
        "queueName": STR,
        "mode": {"enum": ["QueueLength", "MessageRate"]},
        "value": STR,
        "activationValue": STR,
        "vhostName": STR,
        "useRegex": STR,
        "excludeUnacknowledged": STR,
        "operation": {"enum": ["sum", "max", "avg"]},
        "timeout": STR,
        "unsafeSsl": STR,
    },
    ("queueName", "mode", "value"),
)
SCALED_OBJECT = resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    strict(
        {
            "scaleTargetRef": strict(
                {"name": STR, "apiVersion": STR, "kind": STR, "envSourceContainerName": STR},
                ("name",),
            ),
            "pollingInterval": INT,
            "cooldownPeriod": INT,
            "initialCooldownPeriod": INT,
            "idleReplicaCount": INT,
            "minReplicaCount": INT,
            "maxReplicaCount": INT,
            "advanced": strict(
                {
                    "restoreToOriginalReplicaCount": BOOL,
                    "horizontalPodAutoscalerConfig": strict({"name": STR, "behavior": OBJ}),
                    "scalingModifiers": OBJ,
                }
            ),
            "fallback": strict({"failureThreshold": INT, "replicas": INT}),
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "allOf": [
                        strict(
                            {
                                "type": STR,
                                "name": STR,
                                "metadata": {"type": "object", "additionalProperties": STR},
                                "authenticationRef": strict({"name": STR, "kind": STR}, ("name",)),
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                "useCachedMetrics": BOOL,
                            },
                            ("type", "metadata"),
                        ),
                        {
                            "if": {"properties": {"type": {"const": "rabbitmq"}}},
                            "then": {"properties": {"metadata": RABBITMQ_TRIGGER_METADATA}},
                        },
                    ]
                },
            },
        },
        ("scaleTargetRef", "triggers"),
    ),
)
TRIGGER_AUTHENTICATION = resource(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    strict(
        {
            "secretTargetRef": {
                "type": "array",
                "items": strict(
                    {"parameter": STR, "name": STR, "key": STR}, ("parameter", "name", "key")
                ),
            },
            "env": {
                "type": "array",
                "items": strict(
                    {"parameter": STR, "name": STR, "containerName": STR}, ("parameter", "name")
                ),
            },
            "podIdentity": OBJ,
        }
    ),
)

# https://www.rabbitmq.com/kubernetes/operator/using-operator (API reference v1beta1)
RABBITMQ_CLUSTER = resource(
    "rabbitmq.com/v1beta1",
    "RabbitmqCluster",
    strict(
        {
            "replicas": {"type": "integer", "minimum": 0},
            "image": STR,
            "imagePullSecrets": {"type": "array"},
            "service": strict({"type": STR, "annotations": OBJ, "ipFamilyPolicy": STR}),
            "persistence": strict({"storageClassName": STR, "storage": QUANTITY}),
            "resources": RESOURCES,
            "affinity": OBJ,
            "tolerations": {"type": "array"},
            "rabbitmq": strict(
                {
                    "additionalPlugins": {"type": "array", "items": STR},
                    "additionalConfig": STR,
                    "advancedConfig": STR,
                    "envConfig": STR,
                    "erlangInetConfig": STR,
                }
            ),
            "tls": OBJ,
            "override": OBJ,
            "skipPostDeploySteps": BOOL,
            "terminationGracePeriodSeconds": INT,
            "delayStartSeconds": INT,
            "secretBackend": OBJ,
            "autoEnableAllFeatureFlags": BOOL,
        }
    ),
)

# https://cloudnative-pg.io/documentation/current/cloudnative-pg.v1/#postgresql-cnpg-io-v1-ClusterSpec
CNPG_CLUSTER = resource(
    "postgresql.cnpg.io/v1",
    "Cluster",
    strict(
        {
            "description": STR,
            "instances": {"type": "integer", "minimum": 1},
            "imageName": STR,
            "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
            "primaryUpdateMethod": {"enum": ["switchover", "restart"]},
            "minSyncReplicas": INT,
            "maxSyncReplicas": INT,
            "postgresql": strict(
                {
                    "parameters": {"type": "object", "additionalProperties": STR},
                    "pg_hba": {"type": "array", "items": STR},
                    "shared_preload_libraries": {"type": "array", "items": STR},
                }
            ),
            "bootstrap": strict(
                {
                    "initdb": strict(
                        {
                            "database": STR,
                            "owner": STR,
                            "secret": strict({"name": STR}, ("name",)),
                            "encoding": STR,
                            "localeCollate": STR,
                            "localeCType": STR,
                            "postInitApplicationSQL": {"type": "array", "items": STR},
                        }
                    ),
                    "recovery": OBJ,
                    "pg_basebackup": OBJ,
                }
            ),
            "storage": strict(
                {"size": STR, "storageClass": STR, "pvcTemplate": OBJ, "resizeInUseVolumes": BOOL}
            ),
            "walStorage": OBJ,
            "resources": RESOURCES,
            "affinity": strict(
                {
                    "enablePodAntiAffinity": BOOL,
                    "topologyKey": STR,
                    "podAntiAffinityType": {"enum": ["preferred", "required"]},
                    "nodeSelector": OBJ,
                    "tolerations": {"type": "array"},
                }
            ),
            "monitoring": strict({"enablePodMonitor": BOOL}),
            "superuserSecret": strict({"name": STR}, ("name",)),
            "enableSuperuserAccess": BOOL,
            "backup": OBJ,
            "env": {"type": "array"},
        },
        ("instances",),
    ),
)

SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION,
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): RABBITMQ_CLUSTER,
    ("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER,
}
