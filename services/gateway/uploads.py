"""Source files on their way in: a body limit that lets uploads through, and staging.

The gateway refuses request bodies over ``LECTERN_MAX_BODY_BYTES``; a source upload
(``POST /v1/courses/{id}/sources``) may be as large as ``LECTERN_SOURCE_MAX_BYTES``
plus the multipart framing. A file too large for one message travels to the content
service in parts (``content.rpc.stage_upload``) and the ingest command names it.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fastapi import Request

from services.gateway.body_limit import BodySizeLimit
from services.gateway.commands import ask

UPLOAD_PATH = re.compile(r"^/v1/courses/[^/]+/sources/?$")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the form's other fields
INLINE_MAX_BYTES = 256 * 1024  # up to this, the file rides inside the command (base64)
PART_BYTES = 512 * 1024  # content.rpc.stage_upload takes parts up to this size


class BodySizeLimitWithUploads(BodySizeLimit):
    """:class:`BodySizeLimit`, with the source upload route allowed ``upload_max_bytes``."""

    def __init__(self, app: Any, max_bytes: int, upload_max_bytes: int) -> None:
        super().__init__(app, max_bytes)
        self.uploads = BodySizeLimit(app, max(max_bytes, upload_max_bytes + MULTIPART_OVERHEAD))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and UPLOAD_PATH.match(scope.get("path", ""))
        ):
            await self.uploads(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def stage(
    request: Request, upload_id: str, data: bytes, tenant_id: str, user_id: str | None
) -> None:
    """Send ``data`` to the content service in parts, under ``upload_id``."""
    for part, start in enumerate(range(0, len(data), PART_BYTES)):
        await ask(
            request,
            "content",
            "stage_upload",
            upload_id=upload_id,
            part=part,
            tenant_id=tenant_id,
            user_id=user_id,
            data_base64=base64.b64encode(data[start : start + PART_BYTES]).decode(),
        )
