import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { admin } from "../../api/endpoints";
import { ErrorBox } from "../../components/ErrorBox";
import { Loading } from "../../components/Loading";
import { useApi } from "../../lib/useApi";
import { useTitle } from "../../lib/useTitle";
import { PromptAnalytics } from "./PromptAnalytics";
import { LabelForm, NewVersionForm } from "./PromptEditing";
import { Experiments } from "./PromptExperiments";
import { LabelChips } from "./PromptsPage";
import { DiffView, Versions } from "./PromptVersions";

/** One prompt template: its versions, labels, experiments and analytics. */
export function PromptPage() {
  const { name = "" } = useParams();
  useTitle(`Prompt ${name}`);
  const template = useApi((signal) => admin.prompt(name, signal), [name]);
  const [analyticsKey, setAnalyticsKey] = useState(0);
  const t = template.data;

  return (
    <section className="admin-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/admin/prompts">Prompt templates</Link>
      </nav>
      <h1>
        <code>{name}</code>
      </h1>
      <ErrorBox error={template.error} onRetry={template.reload} />
      {template.loading && !t && <Loading label="Loading the template…" />}
      {t && (
        <>
          <p className="muted">
            Task <strong>{t.task}</strong>
            {t.description ? ` · ${t.description}` : ""}
          </p>
          <p>
            Labels: <LabelChips labels={t.labels} />
          </p>
          <Versions template={t} />
          <DiffView template={t} />
          <LabelForm template={t} onDone={template.reload} />
          <NewVersionForm template={t} onDone={template.reload} />
          <Experiments
            template={t}
            onDone={() => {
              template.reload();
              setAnalyticsKey((k) => k + 1);
            }}
          />
          <PromptAnalytics name={name} refresh={analyticsKey} />
        </>
      )}
    </section>
  );
}
