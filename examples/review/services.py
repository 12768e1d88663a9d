"""The outside world of the review service: where documents end up, and the approver's inbox.

In-memory fakes of a CMS and an e-mail provider: external to the workers, so a worker crash
does not unpublish a document.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Documents:
    published: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)

    def both_published_and_archived(self) -> list[str]:
        """Documents in two end states at once: the business rule says never."""
        return sorted(set(self.published) & set(self.archived))

    def reset(self) -> None:
        self.published.clear()
        self.archived.clear()
        self.reminders.clear()


documents = Documents()
