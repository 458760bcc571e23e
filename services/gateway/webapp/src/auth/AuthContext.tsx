import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  type ReactNode,
} from "react";
import { ApiError, getToken, setToken, setUnauthorizedHandler } from "../api/client";
import { auth } from "../api/endpoints";
import type { Me, TokenOut } from "../api/types";

export interface AuthState {
  token: string | null;
  /** Who is signed in; null while unknown (loading, or /me unreachable). */
  me: Me | null;
  loadingMe: boolean;
  /** Why the last session ended, to show on the start page. */
  notice: string | null;
  signIn: (out: TokenOut) => Promise<void>;
  signOut: (notice?: string) => void;
  isAdmin: boolean;
  /** The user logged out themselves: the next sign-in must not return to their pages. */
  leftOnPurpose: boolean;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [token, setTokenState] = useState<string | null>(() => getToken());
  const [me, setMe] = useState<Me | null>(null);
  const [loadingMe, setLoadingMe] = useState<boolean>(() => getToken() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const [leftOnPurpose, setLeftOnPurpose] = useState(false);

  const signOut = useCallback((why?: string) => {
    setToken(null);
    setTokenState(null);
    setMe(null);
    setLoadingMe(false);
    setNotice(why ?? null);
    setLeftOnPurpose(why === undefined);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => signOut("Your session has ended. Please sign in again."));
    return () => setUnauthorizedHandler(null);
  }, [signOut]);

  useEffect(() => {
    if (!token) return;
    const controller = new AbortController();
    setLoadingMe(true);
    auth
      .me(controller.signal)
      .then((who) => setMe(who))
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        // 401 is handled by the unauthorized handler; anything else: carry on without
        // knowing the role (the admin link stays hidden)
        if (!(err instanceof ApiError && err.status === 401)) setMe(null);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoadingMe(false);
      });
    return () => controller.abort();
  }, [token]);

  const signIn = useCallback(async (out: TokenOut) => {
    setToken(out.access_token);
    setNotice(null);
    setLeftOnPurpose(false);
    setMe({ user_id: out.user_id, email: null, is_guest: out.is_guest, role: "learner" });
    setTokenState(out.access_token);
  }, []);

  const value = useMemo<AuthState>(
    () => ({
      token,
      me,
      loadingMe,
      notice,
      signIn,
      signOut,
      isAdmin: me?.role === "admin",
      leftOnPurpose,
    }),
    [token, me, loadingMe, notice, signIn, signOut, leftOnPurpose],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside <AuthProvider>");
  return value;
}
