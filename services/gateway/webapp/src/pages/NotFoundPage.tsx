import { Link } from "react-router-dom";
import { useTitle } from "../lib/useTitle";

export function NotFoundPage() {
  useTitle("Not found");
  return (
    <section className="panel" data-testid="not-found">
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. <Link to="/courses">Go to your courses</Link>.
      </p>
    </section>
  );
}
