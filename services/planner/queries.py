"""Read models the gateway asks for over RPC: a user's courses and one course in full."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.planner.chat import CHAT_KINDS
from services.planner.store import chat_messages, courses, modules
from shared.rpc import RpcError, not_found


def _user(body: dict[str, Any]) -> str:
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise RpcError(400, "user_id is required")
    return user_id


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_courses(sessionmaker: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's courses, newest first, with lesson and assessment progress."""
    user_id = _user(body)
    done = func.count(modules.c.module_id).filter(modules.c.lesson_status == "written")
    assessed = func.count(modules.c.module_id).filter(modules.c.assessment_status == "ready")
    async with sessionmaker() as session:
        rows = await session.execute(
            select(
                courses,
                done.label("done"),
                assessed.label("assessed"),
                func.count(modules.c.module_id).label("total"),
            )
            .select_from(courses.outerjoin(modules, modules.c.course_id == courses.c.course_id))
            .where(courses.c.user_id == user_id)
            .group_by(courses.c.course_id)
            .order_by(courses.c.created_at.desc())
            .limit(int(body.get("limit", 100)))
        )
        return [
            {
                "course_id": r.course_id,
                "title": r.title,
                "topic": r.profile.get("topic"),
                "status": r.status,
                "lessons_done": r.done,
                "lessons_total": r.total,
                "assessments_done": r.assessed,
                "created_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
            }
            for r in rows
        ]


async def get_course(sessionmaker: Any, body: dict[str, Any]) -> dict[str, Any]:
    """One course: profile, status, planning chat, latest plan, modules and lesson status."""
    user_id = _user(body)
    course_id = str(body.get("course_id", ""))
    async with sessionmaker() as session:
        course = (
            await session.execute(select(courses).where(courses.c.course_id == course_id))
        ).first()
        if course is None or course.user_id != user_id:
            raise not_found(f"course {course_id}")
        turns = await session.execute(
            select(chat_messages)
            .where(chat_messages.c.course_id == course_id, chat_messages.c.kind.in_(CHAT_KINDS))
            .order_by(chat_messages.c.seq)
        )
        chat = [
            {
                "id": t.id,
                "seq": t.seq,
                "role": t.role,
                "kind": t.kind,
                "content": t.content,
                "model": t.model,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "latency_ms": t.latency_ms,
                "created_at": _iso(t.created_at),
            }
            for t in turns
        ]
        mods = await session.execute(
            select(modules).where(modules.c.course_id == course_id).order_by(modules.c.position)
        )
        module_list = [
            {
                "module_id": m.module_id,
                "order": m.position,
                "title": m.title,
                "description": m.description,
                "learning_objectives": m.learning_objectives,
                "estimated_hours": m.estimated_hours,
                "lesson_status": m.lesson_status,
                "lesson_id": m.lesson_id,
                "assessment_status": m.assessment_status,
                "quiz_id": m.quiz_id,
                "exercise_id": m.exercise_id,
            }
            for m in mods
        ]
    plans = [t["content"] for t in chat if t["role"] == "assistant"]
    return {
        "course_id": course.course_id,
        "title": course.title,
        "status": course.status,
        "profile": course.profile,
        "auto_finalize": course.auto_finalize,
        "created_at": _iso(course.created_at),
        "updated_at": _iso(course.updated_at),
        "plan": plans[-1] if plans else None,
        "chat": chat,
        "modules": module_list,
        "progress": _progress(module_list),
    }


def _progress(module_list: list[dict[str, Any]]) -> dict[str, int]:
    """Steps done out of two per module (its lesson, then its assessment)."""
    lessons = sum(1 for m in module_list if m["lesson_status"] == "written")
    assessed = sum(1 for m in module_list if m["assessment_status"] == "ready")
    return {
        "done": lessons + assessed,
        "total": 2 * len(module_list),
        "lessons_done": lessons,
        "assessments_done": assessed,
        "modules": len(module_list),
    }
