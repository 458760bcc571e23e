"""The content service's tables (schema ``content``): the platform tables for now."""

from shared.db import service_metadata

metadata = service_metadata("content")
