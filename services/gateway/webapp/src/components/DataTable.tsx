import type { ReactNode } from "react";

interface Props {
  /** The column headings. */
  columns: ReactNode[];
  /** The rows (``<tr>`` elements). */
  children: ReactNode;
  className?: string;
  /** In a box that scrolls sideways on narrow screens (``table-wrap``). */
  wrap?: boolean;
  "data-testid"?: string;
}

/** A table with one row of column headings. */
export function DataTable({ columns, children, className = "table", wrap = true, ...rest }: Props) {
  const table = (
    <table className={className} data-testid={rest["data-testid"]}>
      <thead>
        <tr>
          {columns.map((column, i) => (
            <th key={i} scope="col">
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
  return wrap ? <div className="table-wrap">{table}</div> : table;
}
