// Services: space enables or disables the highlighted one.
import { useMemo } from "react";
import { setServiceEnabled } from "../../vault/services.ts";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { serviceHeader, serviceRows } from "./rows.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

export function ServicesScreen({ index, isVisible, vault, ctx, selection, filter, width, height, color }: ScreenProps) {
  const allRows = useMemo(() => (isVisible ? serviceRows(vault) : []), [isVisible, vault]);
  const list = useList(index, allRows, filter, selection);
  useKeys(
    screenId(index),
    (input, key) => {
      if (list.moveKeys(input, key)) return true;
      if (input !== " ") return false;
      const service = vault.services.find((s) => s.name === list.currentRow()?.key);
      if (service) ctx.run(`${service.enabled ? "disabled" : "enabled"} service ${service.name}`, () => setServiceEnabled(ctx.store, ctx.vaultName, service.name, !service.enabled));
      return true;
    },
    { isActive: isVisible },
  );
  if (!isVisible) return null;
  return <ListView header={serviceHeader()} rows={uncoloured(list.rows, color)} selected={list.index} height={height} width={width} empty="nothing here yet" />;
}
