"""The assessment service's tables (schema ``assessment``): the platform tables for now."""

from shared.db import service_metadata

metadata = service_metadata("assessment")
